"""Pushing: a moved remote is rebased onto; a conflict aborts cleanly with an incident; never forced."""

from __future__ import annotations

from pathlib import Path

import pytest

from clone.errors import PushConflict
from clone.util.git import Git, Identity
from clone.work.push import push_branch, record_push_conflict
from tests.repos import commit_file, git, log_subjects, make_remote_and_checkout, show

BOT = Identity("Clone Bot", "bot@example.com")


@pytest.fixture
def setup(tmp_path):
    checkout, bare = make_remote_and_checkout(tmp_path, "app", {"a.txt": "one\n", "b.txt": "two\n"})
    ws = Git.clone(str(bare), tmp_path / "ws", BOT)
    ws.run("checkout", "--quiet", "-B", "main", "origin/main")
    return checkout, bare, ws


def test_push_fast_forward(setup):
    checkout, bare, ws = setup
    (ws.path / "a.txt").write_text("one\nmore\n")
    sha = ws.commit_all("bot change")
    assert push_branch(ws, "main") == sha
    assert git(bare, "rev-parse", "main") == sha
    assert git(bare, "log", "-1", "--format=%an <%ae>", "main") == "Clone Bot <bot@example.com>"


def test_push_rebases_when_the_remote_moved(setup):
    checkout, bare, ws = setup
    (ws.path / "a.txt").write_text("one\nbot\n")
    ws.commit_all("bot change")
    commit_file(checkout, "b.txt", "two\nhuman\n", "human change")
    git(checkout, "push", "--quiet", "origin", "main")
    sha = push_branch(ws, "main")
    assert git(bare, "rev-parse", "main") == sha
    assert log_subjects(bare)[:3] == ["bot change", "human change", "initial"]


def test_conflict_aborts_cleanly_and_records_an_incident(setup):
    checkout, bare, ws = setup
    (ws.path / "a.txt").write_text("bot version\n")
    ours = ws.commit_all("bot change")
    human = commit_file(checkout, "a.txt", "human version\n", "human change")
    git(checkout, "push", "--quiet", "origin", "main")
    with pytest.raises(PushConflict, match="a.txt") as err:
        push_branch(ws, "main")
    assert not (ws.path / ".git" / "rebase-merge").exists()
    assert git(bare, "rev-parse", "main") == human  # nothing of ours landed; nothing forced over theirs
    ref, where = record_push_conflict(ws, "main", "app", err.value, "run-1")
    assert where == "pushed to main"
    assert git(ws.path, "rev-parse", ref) == ours  # our work is kept
    assert log_subjects(bare)[:2] == ["clone: record push-conflict incident", "human change"]
    incidents = show(bare, "main", "INCIDENTS.md")
    assert "push-conflict: pass commits did not rebase onto main" in incidents
    assert "- Root cause:" in incidents and "a.txt" in incidents and "- Prevention:" in incidents
    assert show(bare, "main", "a.txt") == "human version\n"
