"""Discovery: active, stale, nested, bare, broken, worktrees, symlink loops."""

from __future__ import annotations

import os
import subprocess
import time

from clone.fleet.discover import discover
from tests.repos import ENV, git

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
    make(root / "group" / "sub" / "deep")
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


def git_log_time(path) -> float:
    return float(git(path, "log", "-1", "--format=%ct"))


def test_commit_times_match_git_log_for_loose_packed_and_detached_heads(tmp_path):
    """The in-process reader agrees with git on every storage layout a checkout can have."""
    root = tmp_path / "code"
    loose = make(root / "loose", date="2026-11-20T10:00:00+00:00")
    packed = make(root / "packed", date="2026-11-21T10:00:00+00:00")
    git(packed, "commit", "--quiet", "--allow-empty", "-m", "second",
        env={"GIT_COMMITTER_DATE": "2026-11-22T10:00:00+00:00"})
    git(packed, "gc", "--quiet")  # objects into a pack, refs into packed-refs
    assert not (packed / ".git" / "refs" / "heads" / "main").exists()
    assert (packed / ".git" / "packed-refs").exists()
    detached = make(root / "detached", date="2026-11-19T10:00:00+00:00")
    git(detached, "commit", "--quiet", "--allow-empty", "-m", "later",
        env={"GIT_COMMITTER_DATE": "2026-11-23T10:00:00+00:00"})
    git(detached, "checkout", "--quiet", "--detach", "HEAD~1")
    worktree = root / "wt"
    # A worktree whose HEAD is a packed object of the main repository.
    git(packed, "worktree", "add", "--quiet", "--detach", str(worktree), "HEAD~1")
    now = 1795478400.0  # 2026-11-24T00:00:00Z
    found = {c.path.name: c.committed_at for c in discover(root, 30, now=now)}
    assert found == {name: git_log_time(root / name) for name in ("loose", "packed", "detached", "wt")}
    assert found["packed"] == 1795341600.0 and found["wt"] == 1795255200.0  # 2026-11-22 and 11-21 10:00Z
    assert loose.exists()


def test_bare_in_config_and_bad_git_files_are_skipped(tmp_path, caplog):
    root = tmp_path / "code"
    bare_checkout = make(root / "bare-config")
    git(bare_checkout, "config", "core.bare", "true")
    garbage = root / "garbage"
    garbage.mkdir()
    (garbage / ".git").write_text("not a gitdir line\n")
    escaping = make(root / "escaping")
    (escaping / ".git" / "HEAD").write_text("ref: refs/heads/../../../config\n")
    not_commit = make(root / "tree-head")
    tree = git(not_commit, "rev-parse", "HEAD^{tree}")
    (not_commit / ".git" / "HEAD").write_text(tree + "\n")
    make(root / "ok")
    assert [c.path.name for c in discover(root, 14)] == ["ok"]
    messages = caplog.text
    assert "bare-config: bare repository" in messages
    assert "garbage: .git is neither a directory nor a 'gitdir:' file" in messages
    assert "escaping: HEAD points at an invalid ref name" in messages
    assert "tree-head: HEAD" in messages and "is not a commit" in messages


def test_git_environment_variables_are_ignored(tmp_path, monkeypatch):
    """GIT_DIR and friends in the worker's environment must not redirect the scan."""
    root = tmp_path / "code"
    make(root / "a", date="2026-11-20T10:00:00+00:00")
    other = make(tmp_path / "other", date="2026-11-23T10:00:00+00:00")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", str(other / ".git" / "objects"))
    now = 1795478400.0
    assert [(c.path.name, c.committed_at) for c in discover(root, 30, now=now)] == [("a", 1795168800.0)]


def test_deltified_packed_commit(tmp_path):
    """A commit stored as a delta in a pack (gc --aggressive on similar commits) is still read."""
    repo = tmp_path / "code" / "deltas"
    repo.mkdir(parents=True)
    git(repo, "init", "--quiet", "-b", "main")
    message = "a commit message long and alike enough for the packer to store commits as deltas, number "
    stream = "".join(
        f"commit refs/heads/main\ncommitter A <a@example.com> {1795000000 + i * 60} +0000\n"
        f"data {len(message + str(i))}\n{message}{i}\n" for i in range(200))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=stream, text=True, check=True,
                   env=ENV, capture_output=True)
    git(repo, "gc", "--quiet", "--aggressive")
    packs = list((repo / ".git" / "objects" / "pack").glob("*.idx"))
    rows = [line.split() for line in git(repo, "verify-pack", "-v", str(packs[0])).splitlines()]
    delta = next(row[0] for row in rows if len(row) >= 7 and row[1] == "commit")  # has a delta base
    git(repo, "checkout", "--quiet", "--detach", delta)
    (found,) = discover(tmp_path / "code", 30, now=1795100000.0)
    assert found.committed_at == git_log_time(repo)
