"""End to end: `airflow dags test clone_ideas` against the local GitHub API (POST creates real bare repos)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from clone.fleet.repos_file import load_fleet
from clone.ideas.ideas_file import ACTIVE, BLOCKED, get_idea, load_ideas
from tests.airflow_home import airflow, migrate
from tests.conftest import agent_calls, write_plan
from tests.fakes.github_api import BareRepo, FakeGitHub
from tests.repos import git, log_subjects

pytestmark = pytest.mark.slow
TOKEN = "ghp_e2eIDEAStoken0123456789abcdefABCDEF"
PLAN = {"*": {"bootstrap": [{"write": "notes.py", "text": "print('notes')\n"},
                            {"write": "tests/test_notes.py", "text": "def test_ok():\n    assert True\n"},
                            {"print": "Outcome: done"}]}}
IDEAS = """\
# Ideas for new projects: one or two lines each.
ideas:
  # this one should go all the way
  - id: notes            # short and unique
    title: Notes CLI
    summary: Keep notes in a text file; add, list, grep.
    status: NEW
    repo_name: notes-cli
  - id: parent
    title: Escape upwards
    repo_name: ../x
  - id: slash
    title: Nested
    repo_name: a/b
  - id: option
    title: Looks like a flag
    repo_name: -rf
  - id: empty
    title: No name
    repo_name: ''
  - id: long
    title: Far too long
    repo_name: LONGNAME
"""


def dags_test(env: dict[str, str], gh: FakeGitHub, **extra: str) -> tuple[int, str, float]:
    env = {**env, **{k: v for k, v in os.environ.items() if k.startswith(("CLONE_", "SCRIPTED_"))}}
    env.update({
        "AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps({"conn_type": "github", "host": gh.url, "password": TOKEN}),
        "GITHUB_TOKEN": TOKEN,
        **extra,
    })
    started = time.monotonic()
    result = airflow(env, "dags", "test", "clone_ideas", timeout=600)
    wall = time.monotonic() - started
    print(f"e2e: airflow dags test clone_ideas took {wall:.1f}s")
    assert gh.server_errors == []
    return result.returncode, result.stdout + result.stderr, wall


def assert_token_never_leaks(home: Path, output: str, clone_env: dict[str, Path], repo: Path | None) -> None:
    assert TOKEN not in output
    for call in agent_calls(clone_env["agent_log"]):
        assert TOKEN not in json.dumps(call["env"])
    if repo is not None:
        assert TOKEN not in (repo / ".git" / "config").read_text()
    for log_file in (home / "logs").rglob("*"):
        if log_file.is_file():
            assert TOKEN not in log_file.read_text(errors="replace"), log_file


def test_a_new_idea_becomes_active_and_hostile_names_are_blocked(tmp_path, clone_env):
    ideas_path = clone_env["ideas_file"]
    ideas_path.write_text(IDEAS.replace("LONGNAME", "n" * 300))
    write_plan(clone_env["plan"], PLAN)
    home = tmp_path / "airflow"
    env = migrate(home)
    top_before = {p.name for p in tmp_path.iterdir()}

    with FakeGitHub(token=TOKEN, repos_root=tmp_path / "github") as gh:
        code, output, _ = dags_test(env, gh)
        posts = gh.count("POST")
        repo_state = gh.repo("clone-bot/notes-cli")
    # The run fails because five ideas are BLOCKED; the good one still went all the way.
    assert code != 0, output[-6000:]
    assert "5 of 6 idea(s) BLOCKED: parent, slash, option, empty, long" in output

    target = clone_env["code"] / "notes-cli"
    notes = get_idea(ideas_path, "notes")
    assert (notes.status, notes.repo_path, notes.github, notes.last_error) == (
        ACTIVE, str(target), "clone-bot/notes-cli", None)
    assert log_subjects(target) == ["clone: bootstrap project on notes-cli"]
    assert {"notes.py", "tests/test_notes.py", "AGENTS.md", "PROJECT_MEMORY.md", "INCIDENTS.md",
            "CLONE_FEATURES.md"} <= set(git(target, "ls-files").split())
    assert posts == 1 and repo_state.private
    assert BareRepo(repo_state.bare_path).branch_sha("main") == git(target, "rev-parse", "main")
    assert git(target, "remote", "get-url", "origin") == repo_state.bare_path.as_uri()
    entries, problems = load_fleet(clone_env["repos_file"])
    assert problems == [] and [(e.name, e.path, e.github) for e in entries] == [
        ("notes-cli", str(target), "clone-bot/notes-cli")]

    expected = {"parent": "repo_name '../x' is not a safe directory name: it contains a path separator",
                "slash": "repo_name 'a/b' is not a safe directory name: it contains a path separator",
                "option": "repo_name '-rf' is not a safe directory name: it starts with '-'",
                "empty": "repo_name '' is not a safe directory name: it is empty",
                "long": "is not a safe directory name: it is 300 characters long (at most 100)"}
    for idea_id, message in expected.items():
        idea = get_idea(ideas_path, idea_id)
        assert idea.status == BLOCKED and idea.last_error.startswith("triage: ")
        assert message in idea.last_error
    # Nothing was written outside the code root but Clone's own state: no x beside it, no a/ in it, only the
    # good project; CLONE_WORKSPACE holds the bootstrap's token ledger and (released) lease.
    assert [p.name for p in clone_env["code"].iterdir()] == ["notes-cli"]
    assert {p.name for p in tmp_path.iterdir()} - top_before <= {"github", "ideas.yaml.lock", "repos.yaml",
                                                                 "repos.yaml.lock", "agent_log.jsonl", "workspace"}
    assert {p.name for p in (clone_env["workspace"]).iterdir()} <= {"leases", "runs"}
    assert not [p for p in (clone_env["workspace"] / "leases").glob("*.json")]  # released after the step
    assert [c["repo"] for c in agent_calls(clone_env["agent_log"])] == ["notes-cli"]

    text = ideas_path.read_text()
    for comment in ("# Ideas for new projects: one or two lines each.", "# this one should go all the way",
                    "# short and unique"):
        assert comment in text
    assert "| notes | notes-cli | ACTIVE | clone-bot/notes-cli |" in output
    assert_token_never_leaks(home, output, clone_env, target)


def test_an_api_failure_blocks_and_the_next_run_resumes_without_a_second_repo(tmp_path, clone_env):
    ideas_path = clone_env["ideas_file"]
    ideas_path.write_text("ideas:\n  - id: notes  # keep me\n    title: Notes CLI\n    summary: Notes.\n"
                          "    status: NEW\n    repo_name: notes-cli\n")
    write_plan(clone_env["plan"], PLAN)
    home = tmp_path / "airflow"
    env = migrate(home)
    target = clone_env["code"] / "notes-cli"

    with FakeGitHub(token=TOKEN, repos_root=tmp_path / "github") as gh:
        gh.inject(r"^/user/repos$", 502, method="POST", times=5)  # outlasts one run's 5 attempts
        code, output, _ = dags_test(env, gh, CLONE_GITHUB_RETRY_MAX_WAIT_SECONDS="0.01")
        assert code != 0, output[-6000:]
        blocked = get_idea(ideas_path, "notes")
        assert blocked.status == BLOCKED and blocked.retry_at and blocked.last_error.startswith(
            "publish: POST /user/repos answered 502")
        assert log_subjects(target) == ["clone: bootstrap project on notes-cli"]  # the work done is kept
        assert not list((tmp_path / "github").rglob("*.git"))
        inode = target.stat().st_ino

        code, output, _ = dags_test(env, gh)  # the fault has cleared
        assert code == 0, output[-6000:]
        assert gh.count("POST") == 6 and len(list((tmp_path / "github").rglob("*.git"))) == 1
        bare = gh.repo("clone-bot/notes-cli").bare_path
    idea = get_idea(ideas_path, "notes")
    assert (idea.status, idea.github, idea.last_error, idea.retry_at) == (
        ACTIVE, "clone-bot/notes-cli", None, None)
    assert target.stat().st_ino == inode and log_subjects(target) == ["clone: bootstrap project on notes-cli"]
    assert len(agent_calls(clone_env["agent_log"])) == 1  # the agent did not run again
    assert BareRepo(bare).branch_sha("main") == git(target, "rev-parse", "main")
    assert "# keep me" in ideas_path.read_text()
    assert [e.name for e in load_fleet(clone_env["repos_file"])[0]] == ["notes-cli"]
    assert_token_never_leaks(home, output, clone_env, target)


def test_intake_off_changes_nothing(tmp_path, clone_env):
    ideas_path = clone_env["ideas_file"]
    ideas_path.write_text(IDEAS.replace("LONGNAME", "fine"))
    before = ideas_path.read_bytes()
    write_plan(clone_env["plan"], PLAN)
    env = migrate(tmp_path / "airflow")
    with FakeGitHub(token=TOKEN, repos_root=tmp_path / "github") as gh:
        code, output, _ = dags_test(env, gh, IDEA_BOOTSTRAP_ENABLED="0")
        assert gh.total_requests == 0
    assert code == 0, output[-6000:]
    assert "idea intake is off (IDEA_BOOTSTRAP_ENABLED=0)" in output
    assert ideas_path.read_bytes() == before and not ideas_path.with_name("ideas.yaml.lock").exists()
    assert list(clone_env["code"].iterdir()) == [] and not clone_env["repos_file"].exists()
    assert agent_calls(clone_env["agent_log"]) == []
    assert [i.status for i in load_ideas(ideas_path)[0]] == ["NEW"] + ["NEW"] * 5


def test_the_kill_switch_stops_the_bootstrap_agent(tmp_path, clone_env):
    ideas_path = clone_env["ideas_file"]
    ideas_path.write_text("ideas:\n  - {id: notes, title: Notes CLI, repo_name: notes-cli}\n")
    write_plan(clone_env["plan"], PLAN)
    env = migrate(tmp_path / "airflow")
    with FakeGitHub(token=TOKEN, repos_root=tmp_path / "github") as gh:
        code, output, _ = dags_test(env, gh, AIRFLOW_VAR_CLONE_PAUSED="true")
        assert gh.count("POST") == 0
    assert code == 0, output[-6000:]
    assert "the kill switch is on (Airflow Variable clone_paused=true)" in output
    assert agent_calls(clone_env["agent_log"]) == [] and list(clone_env["code"].iterdir()) == []
    assert get_idea(ideas_path, "notes").status == "TRIAGED"  # picked up again once the switch is off
