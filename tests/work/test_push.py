"""Pushing: a moved remote is rebased onto; a conflict aborts cleanly with an incident; never forced."""

from __future__ import annotations


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


def test_an_incident_push_rejected_by_branch_protection_is_kept_and_never_called_recorded(tmp_path):
    from clone.memory import docs as memory
    from clone.state import incident_log
    from clone.work.push import record_incident

    checkout, bare = make_remote_and_checkout(tmp_path, "app")
    hook = bare / "hooks" / "update"
    hook.write_text("#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
    hook.chmod(0o755)
    ws = Git(tmp_path / "ws", BOT)
    git(tmp_path, "clone", "--quiet", str(bare), str(tmp_path / "ws"))
    incident = memory.Incident(kind="ci-red", title="CI red", what_happened="x", root_cause="y",
                               prevention="z", context="run r1")
    where = record_incident(ws, "main", "app", incident, "r1", workspace=tmp_path / "state")
    assert where.startswith("NOT pushed (the push to main was rejected") and "refs/clone/incidents/" in where
    assert "recorded" not in where
    assert log_subjects(bare) == ["initial"]
    kept = git(ws.path, "for-each-ref", "--format=%(refname)", "refs/clone/incidents/")
    assert kept and "ci-red: CI red" in git(ws.path, "show", f"{kept}:INCIDENTS.md")
    assert git(ws.path, "rev-parse", "HEAD") == git(bare, "rev-parse", "main")  # off the local branch
    assert incident_log.recorded(tmp_path / "state", "r1") == [
        {"repo": "app", "title": "ci-red: CI red", "where": where}]


def test_gated_incident_goes_to_the_work_branch_never_to_main(tmp_path):
    from clone.memory import docs as memory
    from clone.work.push import record_incident

    checkout, bare = make_remote_and_checkout(tmp_path, "app")
    git(tmp_path, "clone", "--quiet", str(bare), str(tmp_path / "ws"))
    ws = Git(tmp_path / "ws", BOT)
    git(ws.path, "push", "--quiet", "origin", "HEAD:refs/heads/clone/app/r1")
    incident = memory.Incident(kind="ci-red", title="CI red", what_happened="x", root_cause="y",
                               prevention="z", context="run r1")
    where = record_incident(ws, "main", "app", incident, "r1", mode="gated", work_branch="clone/app/r1")
    assert where == "pushed to clone/app/r1 (the work branch)"
    assert log_subjects(bare) == ["initial"]  # main untouched
    assert "ci-red: CI red" in show(bare, "clone/app/r1", "INCIDENTS.md")
    no_branch = record_incident(ws, "main", "app", incident, "r2", mode="pr")
    assert no_branch.startswith("kept in the workspace") and "refs/clone/incidents/" in no_branch
    assert log_subjects(bare) == ["initial"]
