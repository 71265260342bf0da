"""Discovery: active, stale, nested, bare, broken, worktrees, symlink loops."""

from __future__ import annotations

import os
import time

from clone.discover import discover
from tests.repos import git

OLD = "2020-01-01T00:00:00+00:00"


def make(path, *, date=None):
    path.mkdir(parents=True)
    git(path, "init", "--quiet", "-b", "main")
    env = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date} if date else None
    (path / "f.txt").write_text("x")
    git(path, "add", "-A")
    git(path, "commit", "--quiet", "-m", "c", env=env)
    return path


def test_discovery_cases(tmp_path):
    root = tmp_path / "code"
    active = make(root / "active")
    make(root / "stale", date=OLD)
    deep = make(root / "group" / "sub" / "deep")
    make(active / "vendor" / "nested")  # inside a checkout: not a fleet member
    bare = root / "bare.git"
    bare.mkdir()
    git(bare, "init", "--quiet", "--bare")
    (root / "broken" / ".git").mkdir(parents=True)  # not a real repository
    empty = root / "empty"
    empty.mkdir()
    git(empty, "init", "--quiet")  # no commits yet
    git(active, "worktree", "add", "--quiet", str(root / "wt"), "-b", "wt-branch")
    os.symlink(root, root / "group" / "loop")  # a symlink loop
    os.symlink(active, root / "alias")  # a symlink to a checkout is not followed
    found = discover(root, 14)
    assert sorted(c.path.relative_to(root).as_posix() for c in found) == ["active", "group/sub/deep", "wt"]
    assert all(c.committed_at > time.time() - 3600 for c in found)


def test_window_and_newest_first(tmp_path):
    root = tmp_path / "code"
    make(root / "a", date="2026-11-01T00:00:00+00:00")
    make(root / "b", date="2026-11-20T00:00:00+00:00")
    make(root / "c", date="2026-10-01T00:00:00+00:00")
    now = 1795478400.0  # 2026-11-24T00:00:00Z
    assert [c.path.name for c in discover(root, 30, now=now)] == ["b", "a"]
    assert [c.path.name for c in discover(root, 14, now=now)] == ["b"]
    assert [c.path.name for c in discover(root, 60, now=now)] == ["b", "a", "c"]


def test_missing_root_is_empty(tmp_path):
    assert discover(tmp_path / "nope", 14) == []
