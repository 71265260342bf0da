"""Fleet reports, as the bash version had them: recent commits across every repo, and counts.

Clone never updates your checkouts: its work is on the remote. So for each enabled, valid repos.yaml
entry with a remote, the report reads the remote's branch (``git ls-remote``: the branch the entry names,
else the remote's default) and ``git log --since`` from that commit; the commits come from the checkout or
Clone's workspace when they hold it, else from a fetch into the report's own bare copy under
``CLONE_WORKSPACE/report/``. Without a remote it reads the checkout's HEAD; a remote that cannot be
reached falls back to it, saying so. All through :class:`~clone.util.git.Git`, several repos at once. The
commits of all repos are merged newest first and rendered as ``time | repo | hash | author | subject``,
or counted per repo, followed by what was read for each repo. A bad entry or a repo git cannot read is
reported and skipped; the others are still reported.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from clone.errors import GitError
from clone.fleet.repos_file import RepoEntry, load_fleet
from clone.util.git import Git, redact_url

#: Fields of ``git log --format``, split on the unit separator (a byte no name or subject holds).
_FIELDS = "%ct%x1f%H%x1f%an%x1f%s"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # a subject must not move the terminal's cursor
HASH_LENGTH = 12
TIME_FORMAT = "%Y-%m-%d %H:%M"
MAX_WORKERS = 16  # each git log is short and mostly waited on: overlap them, but bound the processes


@dataclasses.dataclass(frozen=True)
class Commit:
    """One commit in a report. ``committed_at`` is the committer time (what ``--since`` filters on)."""

    repo: str
    committed_at: int
    sha: str
    author: str
    subject: str


@dataclasses.dataclass(frozen=True)
class FleetReport:
    """Commits of every repo read, newest first; counts per repo (0 included); what was skipped."""

    commits: list[Commit]
    counts: dict[str, int]
    problems: list[str]
    since: str
    sources: dict[str, str] = dataclasses.field(default_factory=dict)  # repo -> what was read


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a repo's commits are read: a repository, a revision in it, and how to say it."""

    git: Git
    rev: str
    description: str


def _remote_branch(user: Git, entry: RepoEntry, remote: str | None = None) -> tuple[str, str | None]:
    """(branch, its sha on the remote, None when the remote has no such branch); GitError if unreachable."""
    remote = remote or entry.remote
    branch = entry.branch or user.remote_default_branch(remote) or "main"
    listed = user.run("ls-remote", "--", remote, f"refs/heads/{branch}", check=False, timeout=120)
    if not listed.ok:
        first = (listed.stderr.strip().splitlines() or ["no output"])[0]
        raise GitError(f"git ls-remote {redact_url(remote)} failed (exit {listed.returncode}): "
                       f"{redact_url(first)}",
                       argv=listed.argv, returncode=listed.returncode)
    sha = next((line.split()[0] for line in listed.stdout.splitlines()
                if line.endswith(f"\trefs/heads/{branch}")), None)
    return branch, sha


def source_for(entry: RepoEntry, workspace: Path | None) -> Source:
    """What to read for ``entry``: the remote branch's commit where there is a remote, else HEAD."""
    if entry.url:
        return _url_source(entry, workspace)
    user = Git(entry.path)
    url = user.remote_url(entry.remote)
    if url is None:
        return Source(user, "HEAD", f"checkout HEAD (no remote {entry.remote!r})")
    try:
        branch, sha = _remote_branch(user, entry)
    except GitError as e:
        return Source(user, "HEAD", f"checkout HEAD (the remote could not be read: {e})")
    ref = f"{entry.remote}/{branch}"
    if sha is None:
        return Source(user, "", f"{ref}: no such branch on the remote")
    places = [user] + ([Git(workspace / "repos" / entry.name)] if workspace else [])
    for place in places:
        if place.is_repo() and place.rev(sha):
            return Source(place, sha, f"{ref} {sha[:HASH_LENGTH]} (remote)")
    if workspace is None:
        raise GitError(f"{entry.name}: {ref} is at {sha[:HASH_LENGTH]}, which no local clone holds")
    copy = Git(workspace / "report" / f"{entry.name}.git")
    if not copy.is_repo():
        copy.path.mkdir(parents=True, exist_ok=True)
        copy.run("init", "--quiet", "--bare")
    copy.fetch(url, f"+refs/heads/{branch}:refs/heads/{branch}")
    return Source(copy, sha, f"{ref} {sha[:HASH_LENGTH]} (remote, fetched)")


def _url_source(entry: RepoEntry, workspace: Path | None) -> Source:
    """A ``url:`` entry has no checkout: its branch, fetched into a bare copy under the workspace."""
    if workspace is None:
        raise GitError(f"{entry.name}: a 'url:' repo is read through a copy under CLONE_WORKSPACE; "
                       "none given")
    copy = Git(workspace / "report" / f"{entry.name}.git")
    if not copy.is_repo():
        copy.path.mkdir(parents=True, exist_ok=True)
        copy.run("init", "--quiet", "--bare")
    branch, sha = _remote_branch(copy, entry, str(entry.url))
    ref = f"{redact_url(entry.url)} {branch}"
    if sha is None:
        return Source(copy, "", f"{ref}: no such branch on the remote")
    if not copy.rev(sha):
        copy.fetch(str(entry.url), f"+refs/heads/{branch}:refs/heads/{branch}")
    return Source(copy, sha, f"{ref} {sha[:HASH_LENGTH]} (remote, fetched)")


def repo_commits(entry: RepoEntry, since: str, source: Source | None = None) -> list[Commit]:
    """Commits reachable from ``source`` (default: the checkout's HEAD) with a committer date after
    ``since`` (anything git accepts).

    An empty repository (or remote branch) has no commits; any other git failure raises GitError.
    """
    source = source or Source(Git(entry.path), "HEAD", "checkout HEAD")
    if not source.rev:
        return []
    repo = source.git
    result = repo.run("log", f"--since={since}", "--no-show-signature", f"--format={_FIELDS}", source.rev,
                      "--", check=False, timeout=120)
    if not result.ok:
        unborn = repo.run("rev-parse", "--verify", "--quiet", source.rev, check=False)
        if source.rev == "HEAD" and unborn.returncode == 1 and not result.timed_out:
            return []  # HEAD names a branch with no commits yet
        raise GitError(f"git log failed in {entry.path} (exit {result.returncode}): "
                       f"{result.stderr.strip() or result.stdout.strip()}", argv=result.argv,
                       returncode=result.returncode, output=result.tail())
    commits = []
    for line in result.stdout.splitlines():
        parts = line.split("\x1f")
        if len(parts) != 4 or not parts[0].isdigit():
            continue  # not one of our lines (e.g. a signature check forced on by config)
        committed, sha, author, subject = parts
        commits.append(Commit(entry.name, int(committed), sha, _CONTROL.sub(" ", author),
                              _CONTROL.sub(" ", subject)))
    return commits


def fleet_report(repos_file: Path, since: str, *, workspace: Path | None = None,
                 max_workers: int = MAX_WORKERS) -> FleetReport:
    """Read every enabled repo's commits since ``since`` (see the module docstring; ``workspace`` is
    ``CLONE_WORKSPACE``); raises ConfigError if repos.yaml is unusable."""
    entries, problems = load_fleet(repos_file)
    enabled = sorted((e for e in entries if e.enabled), key=lambda e: e.name)
    sources: dict[str, str] = {}

    def read(entry: RepoEntry) -> list[Commit] | str:
        try:
            source = source_for(entry, workspace)
            sources[entry.name] = source.description
            return repo_commits(entry, since, source)
        except GitError as e:
            return f"{repos_file}: {entry.name}: skipped: {e}"

    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(enabled)))) as pool:
        results = list(pool.map(read, enabled))
    commits: list[Commit] = []
    counts: dict[str, int] = {}
    for entry, result in zip(enabled, results, strict=True):
        if isinstance(result, str):
            problems.append(result)
            continue
        counts[entry.name] = len(result)
        commits.extend(result)
    # Stable: equal times keep repo-name order, and git's own order within a repo.
    commits.sort(key=lambda c: -c.committed_at)
    return FleetReport(commits, counts, problems, since, {name: sources[name] for name in counts})


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows joined with `` | ``, every column but the last padded to its widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [" | ".join([*(row[i].ljust(w) for i, w in enumerate(widths)), row[-1]]).rstrip() for row in rows]


def format_time(timestamp: int, tz: dt.tzinfo | None = None) -> str:
    """``YYYY-MM-DD HH:MM`` in ``tz`` (default: the local time zone)."""
    return dt.datetime.fromtimestamp(timestamp, tz).strftime(TIME_FORMAT)


def render_commits(report: FleetReport, tz: dt.tzinfo | None = None) -> str:
    """``time | repo | hash | author | subject``, newest first, then a one-line total."""
    rows = [("time", "repo", "hash", "author", "subject")]
    rows += [(format_time(c.committed_at, tz), c.repo, c.sha[:HASH_LENGTH], c.author, c.subject)
             for c in report.commits]
    active = sum(1 for n in report.counts.values() if n)
    lines = _columns(rows) if report.commits else []
    total = (f"{len(report.commits)} commit(s) in {active} of {len(report.counts)} repo(s) "
             f"since {report.since}")
    return "\n".join([*lines, *([""] if lines else []), total, *render_sources(report)])


def render_sources(report: FleetReport) -> list[str]:
    """``read: <repo>  <what>`` lines: the remote branch and commit, or the checkout's HEAD."""
    if not report.sources:
        return []
    width = max(len(name) for name in report.sources)
    return ["", "read:", *(f"  {name.ljust(width)}  {what}" for name, what in sorted(report.sources.items()))]


def render_counts(report: FleetReport) -> str:
    """``repo | commits``, most commits first (repos with none included), then the total."""
    ordered = sorted(report.counts.items(), key=lambda item: (-item[1], item[0]))
    rows = [("repo", "commits"), *((name, str(n)) for name, n in ordered),
            ("total", str(sum(report.counts.values())))]
    lines = _columns([(name, count.rjust(len("commits"))) for name, count in rows])
    return "\n".join([*lines, f"since {report.since}", *render_sources(report)])
