"""Stateless chains: a pass's commit travels to the next task through the remote (refs/clone/pending/...), so a
``push`` on a worker that has no clone of the repo, and cannot see agent_pass's, still pushes it. Real git, a
bare remote, two workspaces standing for two workers' disks."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from clone.config.settings import load_settings
from clone.errors import PushConflict
from clone.fleet.repos_file import RepoEntry
from clone.work import workspace
from clone.work.chain import ChainResult
from clone.work.publish import hand_off, push_chain
from tests.repos import commit_file, git, log_subjects, make_remote_and_checkout

RUN = "manual__2026-12-03T10:00:00+00:00"


def pass_on_worker_a(tmp_path, clone_env):
    checkout, bare = make_remote_and_checkout(tmp_path, "app", {"a.txt": "one\n"})
    entry = RepoEntry.from_dict({"url": bare.as_uri(), "name": "app"})
    worker_a = dataclasses.replace(load_settings(), workspace=tmp_path / "worker-a")
    ws = workspace.prepare(entry, worker_a)
    git_a = ws.git(worker_a, entry)
    (git_a.path / "a.txt").write_text("one\nbot\n")
    head = git_a.commit_all("clone: maintenance pass on app")
    result = ChainResult(**ws.to_dict(), head_sha=head, push_mode="direct", run_id=RUN, changed=True,
                         entry=entry.to_dict())
    return checkout, bare, hand_off(worker_a, result)


def test_push_on_a_worker_without_the_clone_fetches_the_commit_from_the_remote(tmp_path, clone_env):
    checkout, bare, result = pass_on_worker_a(tmp_path, clone_env)
    assert result.pending_ref == "refs/clone/pending/manual__2026-12-03T10-00-00-00-00/app"
    assert git(bare, "rev-parse", result.pending_ref) == result.head_sha
    shutil.rmtree(tmp_path / "worker-a")  # agent_pass's disk is gone (another machine, a finished pod)
    worker_b = dataclasses.replace(load_settings(), workspace=tmp_path / "worker-b")
    pushed = push_chain(worker_b, result, RUN)
    assert pushed.pushed_sha == result.head_sha and pushed.pending_ref is None
    assert git(bare, "rev-parse", "main") == result.head_sha
    assert git(bare, "for-each-ref", "refs/clone/pending/") == "", "the pending ref is deleted once pushed"
    assert (tmp_path / "worker-b" / "repos" / "app" / ".git").is_dir()


def test_a_push_conflict_keeps_the_work_on_the_remote(tmp_path, clone_env):
    checkout, bare, result = pass_on_worker_a(tmp_path, clone_env)
    human = commit_file(checkout, "a.txt", "human version\n", "human change")
    git(checkout, "push", "--quiet", "origin", "main")
    worker_b = dataclasses.replace(load_settings(), workspace=tmp_path / "worker-b")
    with pytest.raises(PushConflict, match="on the remote") as err:
        push_chain(worker_b, result, RUN)
    kept = git(bare, "for-each-ref", "--format=%(refname) %(objectname)", "refs/clone/unpushed/").split()
    assert kept[1] == result.head_sha, (kept, str(err.value))
    assert git(bare, "for-each-ref", "refs/clone/pending/") == ""
    assert human in git(bare, "rev-list", "main").split()  # nothing forced over the human's commit
    assert log_subjects(bare)[0] == "clone: record push-conflict incident"
