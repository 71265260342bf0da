"""The fleet a run works on: repos.yaml, the checkouts found under ``CLONE_CODE_ROOT`` and the
repositories listed from GitHub (``CLONE_DISCOVER_GITHUB``).

Repositories listed from GitHub join the run as ``url:`` repos (the API's ``clone_url``, or ``ssh_url``
with ``CLONE_GIT_PROTOCOL=ssh``) and are not written to repos.yaml: the listing is made again by every
run, so a fleet of hundreds leaves the file as the user wrote it. A repos.yaml entry for the same
GitHub repository (its ``github:``, or the one its URL or checkout remote names) wins: its keys apply,
and ``enabled: false`` keeps the repository out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from clone.config.settings import Settings
from clone.fleet.discover import discover
from clone.fleet.remote_url import github_slug_from_url
from clone.fleet.repos_file import RepoEntry, load_fleet, merge_discovered
from clone.state import kept
from clone.github.listing import Listing, ListedRepo, github_client, list_active
from clone.util.git import Git

log = logging.getLogger(__name__)


def declared_github(entry: RepoEntry) -> str | None:
    """The GitHub repository a repos.yaml entry stands for: its ``github:``, else its checkout's remote."""
    if entry.github:
        return entry.github
    if entry.path:
        return github_slug_from_url(Git(Path(entry.path)).remote_url(entry.remote))
    return None


def entries_from_listing(repos: Iterable[ListedRepo], declared: Iterable[RepoEntry],
                         protocol: str) -> tuple[list[RepoEntry], list[str]]:
    """``url:`` entries for listed repositories no repos.yaml entry declares, named uniquely; and the
    full names that a repos.yaml entry overrides."""
    declared = list(declared)
    taken = {entry.name for entry in declared}
    claimed = {slug.lower(): entry for entry in declared if (slug := declared_github(entry))}
    entries, overridden = [], []
    for repo in repos:
        mine = claimed.get(repo.full_name.lower())
        if mine is not None:
            overridden.append(f"{repo.full_name} (repos.yaml entry {mine.name}"
                              f"{', enabled: false' if not mine.enabled else ''})")
            continue
        name = repo.name if repo.name not in taken else f"{repo.full_name.replace('/', '-')}"[:100]
        suffix = 2
        while name in taken:
            name, suffix = f"{name[:95]}-{suffix}", suffix + 1
        taken.add(name)
        url = repo.ssh_url if protocol == "ssh" else repo.clone_url
        entries.append(RepoEntry(url=url, name=name, github=repo.full_name, branch=repo.default_branch))
    return entries, overridden


def run_fleet(settings: Settings) -> tuple[list[RepoEntry], list[str], Listing | None]:
    """Every repo of this run (enabled or not), one problem message per bad repos.yaml entry, and the
    GitHub listing when there was one."""
    if settings.discover_local:
        found = discover(settings.code_root, settings.active_days)
        log.info("discover: %d checkout(s) under %s with a commit in the last %d day(s)",
                 len(found), settings.code_root, settings.active_days)
        where = f"Variable {kept.DISCOVERED}" if kept.use_variables(settings.repos_file) else settings.repos_file
        for path in merge_discovered(settings.repos_file, [c.path for c in found]):
            log.info("discover: added %s to %s", path, where)
    else:
        log.info("discover: not scanning %s (CLONE_DISCOVER_LOCAL=0)", settings.code_root)
    entries, problems = load_fleet(settings.repos_file)
    if not settings.discover_github:
        return entries, problems, None
    client = github_client(settings.github_conn_id)
    listing = list_active(client, settings.discover_github, settings.active_days)
    listed, overridden = entries_from_listing(listing.kept, entries, settings.git_protocol)
    for note in overridden:
        log.info("discover (GitHub): %s is declared in repos.yaml; that entry applies", note)
    log.info("discover (GitHub): %d repo(s) join the run as url: repos", len(listed))
    return entries + listed, problems, listing
