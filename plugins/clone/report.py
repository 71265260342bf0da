"""Fleet reports, as the bash version had them: recent commits across every repo, and counts.

For each enabled, valid repos.yaml entry, ``git log --since`` on the checkout's HEAD (through
:class:`~clone.git_ops.Git`, several repos at once); the commits of all repos merged newest
first and rendered as ``time | repo | hash | author | subject``, or counted per repo. A bad
entry or a repo git cannot read is reported and skipped; the others are still reported.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from clone.errors import GitError
from clone.fleet import RepoEntry, load_fleet
from clone.git_ops import Git

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


def repo_commits(entry: RepoEntry, since: str) -> list[Commit]:
    """Commits on the checkout's HEAD with a committer date after ``since`` (anything git accepts).

    An empty repository has no commits; any other git failure raises GitError.
    """
    repo = Git(entry.path)
    result = repo.run("log", f"--since={since}", "--no-show-signature", f"--format={_FIELDS}", "HEAD",
                      "--", check=False, timeout=120)
    if not result.ok:
        unborn = repo.run("rev-parse", "--verify", "--quiet", "HEAD", check=False)
        if unborn.returncode == 1 and not result.timed_out:
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


def fleet_report(repos_file: Path, since: str, *, max_workers: int = MAX_WORKERS) -> FleetReport:
    """Read every enabled repo's commits since ``since``; raises ConfigError if repos.yaml is unusable."""
    entries, problems = load_fleet(repos_file)
    enabled = sorted((e for e in entries if e.enabled), key=lambda e: e.name)

    def read(entry: RepoEntry) -> list[Commit] | str:
        try:
            return repo_commits(entry, since)
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
    return FleetReport(commits, counts, problems, since)


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
    return "\n".join([*lines, *([""] if lines else []), total])


def render_counts(report: FleetReport) -> str:
    """``repo | commits``, most commits first (repos with none included), then the total."""
    ordered = sorted(report.counts.items(), key=lambda item: (-item[1], item[0]))
    rows = [("repo", "commits"), *((name, str(n)) for name, n in ordered),
            ("total", str(sum(report.counts.values())))]
    lines = _columns([(name, count.rjust(len("commits"))) for name, count in rows])
    return "\n".join([*lines, f"since {report.since}"])
