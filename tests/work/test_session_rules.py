"""Every rule of the agent session holds in every step that runs the agent: a pass, its verification fix,
a CI autofix and an idea's bootstrap. Each test drives the real step (real git, bare remotes, the
scripted agent) with an agent that breaks one rule, and asserts on what the step left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clone.config.settings import PROMPTS_DIR, load_settings
from clone.errors import CloneError
from clone.fleet.repos_file import RepoEntry
from clone.ideas import bootstrap as steps
from clone.state import budget, lease
from clone.util.git import Git
from clone.work.autofix import fix_ci
from clone.work.passes import run_pass
from clone.work.workspace import identity
from tests.conftest import agent_calls, write_plan
from tests.repos import git, make_remote_and_checkout

STEPS = ("pass", "verify-fix", "autofix", "bootstrap")
RUN = "manual__rules"
STEERING = "STEERING-MARKER: prefer tiny diffs."
SECRET = "ghp_" + "Zq8xR2vN7kP4mW9sT1yB6cH3jL5dF0gAKe"  # built here so this file holds no literal token
MAKEFILE = "test:\n\t@test ! -f broken.flag || (echo 'FAILED: broken.flag present'; exit 1)\n"
KIND = {"pass": "pass", "verify-fix": "autofix", "autofix": "autofix", "bootstrap": "bootstrap"}


def drive(step: str, env: dict, tmp_path: Path, actions: list[dict]) -> tuple[Path, str | None, Exception | None]:
    """Run ``step`` with the agent doing ``actions`` in it; returns (work tree, the step's commit, its error)."""
    settings = load_settings()
    if step == "bootstrap":
        env["ideas_file"].write_text("ideas:\n  - id: n1\n    title: Notes CLI\n    summary: notes\n"
                                     "    status: NEW\n    repo_name: notes\n")
        write_plan(env["plan"], {"*": {"bootstrap": actions}})
        steps.run_step("triage", settings, "n1", lambda idea: steps.triage(settings, idea))
        target = env["code"] / "notes"
        try:
            steps.run_step("bootstrap", settings, "n1", lambda idea: steps.bootstrap(settings, idea, RUN))
        except CloneError as e:
            return target, None, e
        return target, Git(target).rev("refs/heads/main"), None
    checkout, _ = make_remote_and_checkout(tmp_path, "app", {"Makefile": MAKEFILE, "app.py": "x = 1\n",
                                                              "docs/steer.md": STEERING + "\n"})
    entry = RepoEntry(path=str(checkout), name="app", steering="docs/steer.md")
    assert lease.acquire(settings.workspace, "app", RUN, 3600) is None  # as agent_pass does
    if step == "pass":
        write_plan(env["plan"], {"*": {"pass": actions}})
    elif step == "verify-fix":
        write_plan(env["plan"], {"*": {"pass": [{"write": "broken.flag", "text": "1"}],
                                       "autofix": [{"delete": "broken.flag"}, *actions]}})
    else:
        write_plan(env["plan"], {"*": {"pass": [{"write": "app.py", "text": "x = 2\n"}], "autofix": actions}})
    try:
        result = run_pass(entry, settings, RUN)
    except CloneError as e:
        return settings.workspace / "repos" / "app", None, e
    if step != "autofix":
        return Path(result["workdir"]), result["head_sha"], None
    ws = Git(Path(result["workdir"]), identity(settings))
    try:
        fix = fix_ci(settings, ws, entry, run_id=RUN, sha=result["head_sha"], attempt=1,
                     failure_report="FAILED test_x: assert 1 == 2")
    except CloneError as e:
        return ws.path, None, e
    return ws.path, fix, None


@pytest.fixture(autouse=True)
def block(clone_env, monkeypatch):
    monkeypatch.setenv("CLONE_VERIFY_POLICY", "block")


def step_call(env: dict, step: str) -> dict:
    return [c for c in agent_calls(env["agent_log"]) if c["kind"] == KIND[step]][-1]


@pytest.mark.parametrize("step", STEPS)
def test_git_config_and_info_are_restored(clone_env, tmp_path, step):
    workdir, sha, error = drive(step, clone_env, tmp_path, [
        {"append": ".git/config", "text": "[core]\n\tfsmonitor = /tmp/evil\n"},
        {"write": ".git/info/attributes", "text": "* -diff\n"},
        {"write": "work.txt", "text": "w\n"}])
    assert error is None and sha
    assert "evil" not in (workdir / ".git" / "config").read_text()
    assert not (workdir / ".git" / "info" / "attributes").exists()
    incidents = git(workdir, "show", f"{sha}:INCIDENTS.md")
    assert "the agent changed .git/config" in incidents and "the agent changed .git/info" in incidents


@pytest.mark.parametrize("step", STEPS)
def test_tokens_go_to_the_runs_ledger(clone_env, tmp_path, step):
    drive(step, clone_env, tmp_path, [{"usage": {"input_tokens": 700, "output_tokens": 77}},
                                      {"write": "work.txt", "text": "w\n"}])
    ledger = budget.ledger_path(clone_env["workspace"], RUN)
    entries = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert any(e["kind"] == KIND[step] and e["tokens"] >= 777 for e in entries), entries
    assert budget.spent(clone_env["workspace"], RUN) >= 777


@pytest.mark.parametrize("step", STEPS)
def test_every_prompt_carries_the_core_directive_and_the_steps_steering(clone_env, tmp_path, step):
    drive(step, clone_env, tmp_path, [{"write": "work.txt", "text": "w\n"}])
    prompt = step_call(clone_env, step)["prompt"]
    core = (PROMPTS_DIR / "autonomous_core_prompt.md").read_text().strip().splitlines()[0]
    assert core in prompt
    steering = STEERING if step != "bootstrap" else \
        (PROMPTS_DIR / "incubator_prompt.md").read_text().strip().splitlines()[0]
    assert steering in prompt


@pytest.mark.parametrize("step", STEPS)
def test_the_agents_process_group_is_in_the_lease(clone_env, tmp_path, step):
    repo = "notes" if step == "bootstrap" else "app"
    seen = tmp_path / "lease-seen.json"
    drive(step, clone_env, tmp_path, [{"copy": str(lease.lease_path(clone_env["workspace"], repo)), "to": str(seen)},
                                      {"write": "work.txt", "text": "w\n"}])
    held = json.loads(seen.read_text())
    assert held["run_id"] == RUN
    assert step_call(clone_env, step)["pgid"] in [g["pgid"] for g in held["groups"]]


@pytest.mark.parametrize("step", STEPS)
def test_a_secret_blocks_and_the_work_is_kept(clone_env, tmp_path, step):
    workdir, sha, error = drive(step, clone_env, tmp_path, [{"write": "leak.py", "text": f"TOKEN = '{SECRET}'\n"}])
    assert error is not None and sha is None and SECRET not in str(error)
    assert "secret" in str(error)
    refs = git(workdir, "for-each-ref", "--format=%(refname)", "refs/clone/").split()
    kept = [ref for ref in refs if "blocked" in ref]
    assert kept and SECRET in git(workdir, "show", f"{kept[-1]}:leak.py")
    for branch in git(workdir, "for-each-ref", "--format=%(refname)", "refs/heads/").split():
        assert SECRET not in git(workdir, "log", "-p", branch)


@pytest.mark.parametrize("step", STEPS)
def test_caches_are_never_committed(clone_env, tmp_path, step):
    workdir, sha, error = drive(step, clone_env, tmp_path, [{"write": "work.txt", "text": "w\n"},
                                                            {"write": "pkg/__pycache__/m.cpython-311.pyc", "text": "b"}])
    assert error is None and sha
    files = git(workdir, "show", "--name-only", "--format=", sha).split()
    assert "work.txt" in files and not [f for f in files if "__pycache__" in f]
