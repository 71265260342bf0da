"""One commit rule for agent work (``clone.work.commits.commit_work``), held by a pass and by an autofix alike:
nothing the checks (or an agent running the tests itself) leave behind is committed. Real git, a real
bare remote, the scripted agent and the local GitHub API double; the autofix is the real operator."""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import TaskDeferred

from clone.fleet.repos_file import RepoEntry
from clone.operators.autofix import CloneAutofixOperator
from clone.work.commits import is_generated
from clone.work.passes import run_pass
from clone.config.settings import load_settings
from tests.conftest import write_plan
from tests.fakes.github_api import FakeGitHub
from tests.repos import git, log_subjects, make_remote_and_checkout

TOKEN = "ghp_commitRULESprobe0123456789abcdefAB"
# The repo's checks leave what pytest, a bytecode compile and a build leave behind.
MAKEFILE = ("test:\n"
            "\t@mkdir -p src/__pycache__ .pytest_cache/v/cache build\n"
            "\t@echo bytecode > src/__pycache__/app.cpython-311.pyc\n"
            "\t@echo '{}' > .pytest_cache/v/cache/lastfailed\n"
            "\t@echo binary > build/out.bin\n")
# What an autofix agent that ran the tests itself leaves, besides its fix.
AGENT_LEFTOVERS = [{"write": "src/__pycache__/fix.cpython-311.pyc", "text": "bytecode"},
                   {"write": ".pytest_cache/v/cache/nodeids", "text": "[]"},
                   {"write": "pkg/node_modules/left/index.js", "text": "x"}]


@pytest.mark.parametrize("path, generated", [
    ("src/__pycache__/app.cpython-311.pyc", True), (".pytest_cache/v/cache/lastfailed", True),
    ("app.pyc", True), ("web/node_modules/x/index.js", True), (".coverage", True),
    ("src/pkg.egg-info/PKG-INFO", True), ("src/app.py", False), ("build/out.bin", False),
    ("docs/pycache.md", False), ("coverage.md", False),
])
def test_generated_paths(path, generated):
    assert is_generated(path) is generated


def committed_files(workdir, rev="HEAD"):
    return sorted(git(workdir, "show", "--name-only", "--format=", rev).split())


def test_pass_commits_neither_check_output_nor_the_agents_caches(clone_env, tmp_path):
    checkout, _ = make_remote_and_checkout(tmp_path, "app", {"Makefile": MAKEFILE, "src/app.py": "x = 1\n"})
    write_plan(clone_env["plan"], {"*": {"pass": [{"write": "src/app.py", "text": "x = 2\n"},
                                                  {"write": "src/__pycache__/agent.pyc", "text": "b"}]}})
    result = run_pass(RepoEntry(path=str(checkout), name="app"), load_settings(), "r1")
    assert result["verification"] == "passed" and result["changed"]
    files = committed_files(result["workdir"])
    assert "src/app.py" in files and "PROJECT_MEMORY.md" in files
    assert [f for f in files if is_generated(f) or f.startswith("build/")] == [], files


def test_autofix_commits_only_the_fix(clone_env, tmp_path, monkeypatch):
    checkout, remote = make_remote_and_checkout(tmp_path, "app", {"Makefile": MAKEFILE, "src/app.py": "x = 1\n"})
    write_plan(clone_env["plan"], {"*": {
        "pass": [{"write": "src/app.py", "text": "x = 2\n"}],
        "autofix": [{"write": "src/app.py", "text": "x = 3  # fixed\n"}, *AGENT_LEFTOVERS],
    }})
    result = run_pass(RepoEntry(path=str(checkout), name="app"), load_settings(), "r1")
    workdir = result["workdir"]
    git(workdir, "push", "--quiet", "origin", f"HEAD:{result['branch']}")  # the push task's job
    pushed = result["head_sha"]
    # The pass's checks left their output in the workspace the autofix works in.
    assert (tmp_path / "workspace/repos/app/src/__pycache__/app.cpython-311.pyc").exists()
    assert (tmp_path / "workspace/repos/app/build/out.bin").exists()

    with FakeGitHub(token=TOKEN) as gh:
        gh.add_repo("acme/app", bare_path=remote, complete_after_polls=0)
        failed_run = gh.set_run_state("acme/app", pushed, "completed", "failure")
        monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT",
                           json.dumps({"conn_type": "github", "host": gh.url, "password": TOKEN}))
        monkeypatch.setenv("AIRFLOW_VAR_CLONE_PAUSED", "false")
        monkeypatch.setenv("CLONE_CI_RERUN_FAILED", "0")  # straight to the autofix agent
        ci_result = {**result, "repo": "app", "github": "acme/app", "pushed": True, "pushed_sha": pushed,
                     "push_branch": result["branch"], "push_mode": "direct",
                     "ci": {"status": "failure", "sha": pushed, "repo": "acme/app", "runs": [failed_run],
                            "message": "CI failed"}}
        operator = CloneAutofixOperator(task_id="autofix", ci_result=ci_result)
        try:
            outcome = operator.execute({"run_id": "r1", "params": {}})
        except TaskDeferred:
            outcome = None  # CI for the fix had not finished at the first look: the push is what counts here
        assert gh.server_errors == []

    assert log_subjects(remote)[:2] == ["clone: fix CI failure on app", "clone: maintenance pass on app"]
    assert committed_files(remote, "main") == ["src/app.py"]
    assert git(remote, "show", "main:src/app.py") == "x = 3  # fixed"
    tree = git(remote, "ls-tree", "-r", "--name-only", "main").split()
    assert [f for f in tree if is_generated(f) or f.startswith("build/")] == [], tree
    if outcome is not None:
        assert outcome["autofix_attempts"] == 1 and outcome["ci"]["status"] == "success"
