"""The private clone a pass works in, under ``CLONE_WORKSPACE``.

The user's checkout is only read (its remote URL); passes work in
``CLONE_WORKSPACE/repos/<name>``, a clone of the repo's remote, reset to the freshly fetched
remote branch at the start of every pass. Without a remote, the clone is made from the
user's checkout itself, and nothing is ever pushed back to it. A ``url:`` entry has no checkout:
its URL is the remote, and the clone under ``CLONE_WORKSPACE`` is a per-worker cache made again
whenever it is missing (a fresh worker, a new pod).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path
from typing import Any

from clone.errors import ConfigError, GitError
from clone.fleet.remote_url import github_slug_from_url  # noqa: F401 - also imported from here
from clone.fleet.repos_file import RepoEntry
from clone.util import git_auth
from clone.util.git import Git, Identity, redact_url
from clone.util.git_auth import GitAuth
from clone.config.settings import Settings

log = logging.getLogger(__name__)

@dataclasses.dataclass(frozen=True)
class Workspace:
    """Where a pass works and what it is based on."""

    repo: str
    workdir: str
    branch: str
    base_sha: str
    has_remote: bool
    github: str | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def git(self, settings: Settings) -> Git:
        return workspace_git(settings, self.repo, self.workdir)


def auth_for(entry: RepoEntry, settings: Settings, url: str | None) -> GitAuth:
    """The scoped credential of ``entry``'s remote (:mod:`clone.util.git_auth`)."""
    return git_auth.for_remote(url, entry_name=entry.name, deploy_key=entry.deploy_key,
                               conn_id=settings.github_conn_id)


def workspace_git(settings: Settings, repo: str, workdir: str | Path) -> Git:
    """The Git of a pass's workspace, its network commands with the repo's scoped credential: its
    ``deploy_key:`` from repos.yaml, its remote the workspace's ``origin`` (which :func:`prepare` set)."""
    from clone.fleet.repos_file import load_fleet

    try:
        entries, _ = load_fleet(settings.repos_file)
    except ConfigError as e:
        log.warning("workspace: %s; %s pushes without a deploy key", e, repo)
        entries = []
    entry = next((e for e in entries if e.name == repo), None)
    ws = Git(Path(workdir), identity(settings))
    ws.auth = git_auth.for_remote(ws.remote_url("origin"), entry_name=repo, conn_id=settings.github_conn_id,
                                  deploy_key=entry.deploy_key if entry else None)
    return ws


def identity(settings: Settings) -> Identity:
    return Identity(settings.git_author_name, settings.git_author_email)


def workdir_for(settings: Settings, name: str) -> Path:
    return settings.workspace / "repos" / name


def _save_unpushed(ws: Git, branch: str) -> None:
    """Keep commits a previous pass made but never pushed under refs/clone/unpushed/."""
    head = ws.rev("HEAD")
    upstream = ws.rev(f"origin/{branch}")
    if head and upstream and head != upstream and not ws.is_ancestor(head, upstream):
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        ref = f"refs/clone/unpushed/{stamp}"
        ws.run("update-ref", ref, head)
        log.warning("workspace: commits never pushed from an earlier pass are kept at %s (%s)", ref, head[:12])


def prepare(entry: RepoEntry, settings: Settings) -> Workspace:
    """Clone or refresh the repo's workspace and reset it to the fetched remote branch."""
    remote_url = entry.url or Git(Path(str(entry.path))).remote_url(entry.remote)
    source = remote_url or str(entry.path)
    if entry.url:
        log.info("workspace: %s is cloned from %s (no local checkout)", entry.name, redact_url(entry.url))
    elif remote_url:
        log.info("workspace: %s follows remote %r (%s)", entry.name, entry.remote, redact_url(remote_url))
    else:
        log.info("workspace: %s has no remote %r; working from the local checkout (nothing will be pushed)",
                 entry.name, entry.remote)
    workdir = workdir_for(settings, entry.name)
    if workdir.exists() and not Git(workdir).is_repo():
        raise GitError(f"workspace {workdir} exists but is not a git repository; move it away and retry")
    auth = auth_for(entry, settings, remote_url)
    if workdir.exists():
        ws = Git(workdir, identity(settings), auth)
        if ws.remote_url("origin") != source:
            ws.run("remote", "set-url", "--", "origin", source)
    else:
        log.info("workspace: cloning %s into %s", redact_url(source), workdir)
        ws = Git.clone(source, workdir, identity(settings), auth)
    ws.fetch("origin", "+refs/heads/*:refs/remotes/origin/*")
    branch = entry.branch or ws.remote_default_branch("origin") or "main"
    base = ws.rev(f"origin/{branch}")
    if base is None:
        raise GitError(f"{entry.name}: branch {branch!r} does not exist on {redact_url(source)}; "
                       "set 'branch:' in repos.yaml")
    ws.run("rebase", "--abort", check=False)  # left over by a killed pass, if any
    _save_unpushed(ws, branch)
    ws.run("checkout", "--quiet", "--force", "-B", branch, f"origin/{branch}")
    ws.run("clean", "-ffd", "--quiet")
    log.info("workspace: %s at %s on %s (%s)", entry.name, workdir, branch, base[:12])
    return Workspace(
        repo=entry.name,
        workdir=str(workdir),
        branch=branch,
        base_sha=base,
        has_remote=remote_url is not None,
        github=entry.github or github_slug_from_url(remote_url),
    )
