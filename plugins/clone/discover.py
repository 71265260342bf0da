"""Find recently active git checkouts under a code root.

A checkout is a directory holding ``.git`` (a directory, or a file for worktrees and
submodules). It is active when its HEAD commit is younger than the window. Commit dates
are read in-process through GitPython's pure-Python object database: no ``git`` process
per repository, which is what makes a scan of thousands of checkouts cheap.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import git
from gitdb.exc import BadName, BadObject

log = logging.getLogger(__name__)

MAX_DEPTH = 6
#: Directories never worth descending into while looking for checkouts.
SKIP_DIRS = frozenset({"node_modules", ".venv", "venv", "__pycache__", "target", ".tox", ".cache"})


@dataclasses.dataclass(frozen=True)
class Checkout:
    """A checkout found under the code root and the time of its HEAD commit."""

    path: Path
    committed_at: float


def iter_checkouts(root: Path, max_depth: int = MAX_DEPTH) -> Iterator[Path]:
    """Yield every directory under ``root`` that holds ``.git``.

    Does not descend into a checkout (nested checkouts are its submodules or vendored
    copies, not fleet members), into hidden or dependency folders, or through symlinks
    (which also makes symlink loops harmless).
    """
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as e:
            log.warning("discover: cannot list %s: %s", folder, e)
            continue
        if any(entry.name == ".git" for entry in entries):
            yield Path(folder)
            continue
        if depth >= max_depth:
            continue
        for entry in entries:
            if entry.name.startswith(".") or entry.name in SKIP_DIRS:
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), depth + 1))
            except OSError:
                continue


def head_commit_time(path: Path) -> float | None:
    """Committer time of HEAD, or None for an empty, bare or broken repository."""
    try:
        repo = git.Repo(path, odbt=git.GitDB)
        try:
            if repo.bare:
                return None
            return float(repo.head.commit.committed_date)
        finally:
            repo.close()
    except (git.exc.GitError, BadName, BadObject, ValueError, OSError) as e:
        log.warning("discover: skipping %s: %s", path, e)
        return None


def discover(root: Path, active_days: int, *, now: float | None = None,
             max_depth: int = MAX_DEPTH) -> list[Checkout]:
    """Checkouts under ``root`` with a HEAD commit in the last ``active_days`` days, newest first."""
    if not root.is_dir():
        log.warning("discover: code root %s does not exist; nothing to discover", root)
        return []
    cutoff = (time.time() if now is None else now) - active_days * 86400
    found = []
    for path in iter_checkouts(root, max_depth):
        committed = head_commit_time(path)
        if committed is not None and committed >= cutoff:
            found.append(Checkout(path, committed))
    found.sort(key=lambda c: (-c.committed_at, str(c.path)))
    return found
