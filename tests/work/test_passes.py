"""An agent pass on real repos: private workspace, memory docs, prompt, commit; the user's checkout untouched."""

from __future__ import annotations

import json

import pytest

from clone.errors import AgentError
from clone.fleet.repos_file import RepoEntry
from clone.util.git import Git
from clone.work.passes import run_pass
from clone.work.push import push_branch
from clone.config.settings import load_settings
from tests.conftest import agent_calls, write_plan
from tests.repos import commit_file, git, make_remote_and_checkout


@pytest.fixture
def repo(clone_env, tmp_path):
    checkout, bare = make_remote_and_checkout(tmp_path, "app")
    # The user is mid-work on another branch with a dirty file.
    git(checkout, "checkout", "--quiet", "-b", "feature")
    (checkout / "README.md").write_text("uncommitted edit\n")
    return checkout, bare


def test_pass_commits_agent_changes_in_workspace_only(clone_env, repo):
    checkout, bare = repo
    write_plan(clone_env["plan"], {"app": {"pass": [{"write": "feature.txt", "text": "new\n"}]}})
    result = run_pass(RepoEntry(path=str(checkout), name="app"), load_settings(), "manual__1")
    assert result["changed"] and result["branch"] == "main" and result["has_remote"]
    ws = result["workdir"]
    assert ws.startswith(str(clone_env["workspace"]))
    assert git(ws, "log", "-1", "--format=%an|%s") == "Clone Bot|clone: maintenance pass on app"
    files = git(ws, "show", "--name-only", "--format=", "HEAD").splitlines()
    assert sorted(files) == ["AGENTS.md", "CLONE_FEATURES.md", "INCIDENTS.md", "PROJECT_MEMORY.md", "feature.txt"]
    # The user's checkout: same branch, same dirty file, no new commits, nothing fetched into it.
    assert git(checkout, "branch", "--show-current") == "feature"
    assert (checkout / "README.md").read_text() == "uncommitted edit\n"
    assert git(checkout, "status", "--porcelain") == "M README.md"
    assert "Clone-Run: manual__1" in git(ws, "log", "-1", "--format=%B")


def test_agent_contract_and_prompt(clone_env, repo, monkeypatch):
    checkout, _ = repo
    monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT", '{"conn_type": "github", "password": "ghp_secret"}')
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret2")
    monkeypatch.setenv("TASKS_PER_REPO", "4")
    run_pass(RepoEntry(path=str(checkout), name="app"), load_settings(), "r1")
    (call,) = agent_calls(clone_env["agent_log"])
    assert call["cwd"].endswith("workspace/repos/app")
    assert call["kind"] == "pass" and call["repo"] == "app" and call["prompt_file_matches"]
    env = call["env"]
    assert not [k for k in env if k.startswith("AIRFLOW")]
    assert "GITHUB_TOKEN" not in env and "ghp_secret" not in json.dumps(env)
    assert env["SCRIPTED_AGENT_PLAN"]  # passthrough works
    prompt = call["prompt"]
    assert "Repository: app" in prompt and "at most 4 backlog item(s)" in prompt
    for doc in ("PROJECT_MEMORY.md", "INCIDENTS.md", "CLONE_FEATURES.md", "AGENTS.md"):
        assert f"### {doc}" in prompt


def test_no_change_is_reported(clone_env, repo):
    checkout, _ = repo
    settings = load_settings()
    first = run_pass(RepoEntry(path=str(checkout), name="app"), settings, "r1")  # adds the memory docs
    push_branch(Git(first["workdir"]), "main")
    result = run_pass(RepoEntry(path=str(checkout), name="app"), settings, "r2")
    assert result["changed"] is False and result["head_sha"] == result["base_sha"]


def test_workspace_follows_the_remote_and_keeps_unpushed_work(clone_env, repo):
    checkout, bare = repo
    settings = load_settings()
    first = run_pass(RepoEntry(path=str(checkout), name="app"), settings, "r1")  # committed, never pushed
    git(checkout, "checkout", "--quiet", "main")
    moved = commit_file(checkout, "human.txt", "x\n", "human work")
    git(checkout, "push", "--quiet", "origin", "main")
    second = run_pass(RepoEntry(path=str(checkout), name="app"), settings, "r2")
    assert second["base_sha"] == moved
    kept = git(second["workdir"], "for-each-ref", "--format=%(objectname)", "refs/clone/unpushed/")
    assert kept == first["head_sha"]


def test_agent_failure_raises_with_reason(clone_env, repo):
    checkout, _ = repo
    write_plan(clone_env["plan"], {"*": {"pass": [{"print": "oops"}, {"exit": 4}]}})
    with pytest.raises(AgentError, match="exited with code 4"):
        run_pass(RepoEntry(path=str(checkout), name="app"), load_settings(), "r1")


def test_agent_timeout_kills_it(clone_env, repo, monkeypatch):
    checkout, _ = repo
    monkeypatch.setenv("CLONE_AGENT_TIMEOUT_MINUTES", "0.03")
    write_plan(clone_env["plan"], {"*": {"pass": [{"sleep": 60}]}})
    with pytest.raises(AgentError, match="timed out"):
        run_pass(RepoEntry(path=str(checkout), name="app"), load_settings(), "r1")
