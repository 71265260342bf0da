"""The commit rule for agent work, held by every step (a pass, its fix, an autofix, a bootstrap): what
goes into the one commit, and how work that must not be pushed is kept under ``refs/clone/``."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection
from pathlib import PurePosixPath

from clone.memory import compaction
from clone.memory import docs as memory
from clone.util.git import Git

log = logging.getLogger(__name__)

#: Files the orchestrator itself writes after the agent ran (staged explicitly, never by ``add -A``).
ORCHESTRATOR_FILES = (memory.AGENTS, memory.MEMORY, memory.INCIDENTS, compaction.ARCHIVE_DIR.rstrip("/"))
#: Directories of caches and build output that a new file under is never committed, whoever wrote it.
GENERATED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", ".tox",
                            ".nox", ".eggs", "node_modules", ".gradle", ".next", ".parcel-cache", ".turbo"})
GENERATED_SUFFIXES = (".pyc", ".pyo", ".egg-info")
GENERATED_FILES = frozenset({".coverage"})
def is_generated(path: str) -> bool:
    """True for a cache or build-output path (``src/__pycache__/x.pyc``, ``.pytest_cache/v/...``)."""
    parts = PurePosixPath(path).parts
    return (any(part in GENERATED_DIRS or part.endswith(GENERATED_SUFFIXES) for part in parts)
            or parts[-1] in GENERATED_FILES)


def commit_work(git: Git, base: str, tree: str, message: str, *, leftovers: Collection[str] = ()) -> str | None:
    """The one commit rule for agent work; returns the commit or None.

    The commit holds ``tree`` (the agent's work, taken before the checks ran) less every file new since
    ``base`` that is a cache or build output (:func:`is_generated`) or was already lying untracked before
    the agent ran (``leftovers``), plus the orchestrator's own files as they are now. The work tree is
    left alone.
    """
    git.reset_index(tree)
    added = git.run("diff", "--cached", "--name-only", "--no-renames", "-z", "--diff-filter=A", base).stdout
    dropped = [path for path in added.split("\0") if path and (is_generated(path) or path in leftovers)]
    if dropped:
        git.run("update-index", "--force-remove", "-z", "--stdin", stdin="\0".join(dropped) + "\0")
        log.info("commit: left out %d file(s) that are caches, build output or earlier checks' leftovers: %s",
                 len(dropped), ", ".join(dropped[:10]) + (" ..." if len(dropped) > 10 else ""))
    git.stage(*ORCHESTRATOR_FILES)
    return git.commit_index(message)


def keep_work(git: Git, tree: str, parent: str | None, label: str) -> str:
    """Keep ``tree`` as a commit under ``refs/clone/<label>/<time>``, reset the work tree to ``parent``
    (empty when there is none), and return the ref: work that must not be pushed is never thrown away."""
    commit = git.out("commit-tree", tree, *(("-p", parent) if parent else ()), "-m", f"clone: {label} (not pushed)")
    ref = f"refs/clone/{label}/{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}"
    git.run("update-ref", ref, commit)
    if parent:
        git.run("reset", "--quiet", "--hard", parent)
    else:
        git.run("read-tree", "--empty")
    git.run("clean", "-ffd", "--quiet")
    log.warning("the work was not pushed; it is kept in %s at %s", git.path, ref)
    return ref
