"""Every rule of the agent session holds in every step that runs the agent: a pass, its verification fix,
a CI autofix and an idea's bootstrap. Each test drives the real step (real git, bare remotes, the
scripted agent) with an agent that breaks one rule, and asserts on what the step left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from clone.config.settings import PROMPTS_DIR, load_settings
from clone.errors import CloneError
from clone.fleet.repos_file import RepoEntry
from clone.ideas import bootstrap as steps
from clone.state import budget, lease
from clone.util import sandbox
from clone.util.git import Git
from clone.work.autofix import fix_ci
from clone.work.passes import run_pass
from clone.work.workspace import identity
from tests.conftest import agent_calls, write_plan
from tests.repos import git, make_remote_and_checkout

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
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


def sandboxed(monkeypatch) -> None:
    """Agents run in the bubblewrap sandbox (and the test fails, not skips, when it cannot)."""
    monkeypatch.setenv("CLONE_SANDBOX", "required")
    sandbox.probe.cache_clear()
    assert sandbox.probe() is None, f"the sandbox cannot run here (install bubblewrap; see README): {sandbox.probe()}"


@pytest.mark.parametrize("step", STEPS)
def test_git_config_and_info_are_restored_without_the_sandbox(clone_env, tmp_path, monkeypatch, step):
    # Where no sandbox runs (CLONE_SANDBOX=off, or auto on a machine without bwrap) .git is the agent's to
    # write: the session restores it, with an incident.
    monkeypatch.setenv("CLONE_SANDBOX", "off")
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
def test_the_sandbox_keeps_git_config_and_info_read_only(clone_env, tmp_path, monkeypatch, step):
    # In the sandbox the same edits fail at the agent's write (.git is read-only); the step goes on.
    sandboxed(monkeypatch)
    workdir, sha, error = drive(step, clone_env, tmp_path, [
        {"shell": "printf '[core]\\n\\tfsmonitor = /tmp/evil\\n' >> .git/config", "name": "config"},
        {"shell": "mkdir -p .git/info && echo '* -diff' > .git/info/attributes", "name": "info"},
        {"write": "work.txt", "text": "w\n"}])
    assert error is None and sha
    attacks = {c["attack"]: c for c in agent_calls(clone_env["agent_log"]) if "attack" in c}
    assert set(attacks) == {"config", "info"}
    for name, attack in attacks.items():
        assert attack["exit"] != 0 and "Read-only file system" in attack["output"], (name, attack)
    assert "evil" not in (workdir / ".git" / "config").read_text()
    assert not (workdir / ".git" / "info" / "attributes").exists()
    assert "work.txt" in git(workdir, "show", "--name-only", "--format=", sha).split()
    incidents = git(workdir, "show", f"{sha}:INCIDENTS.md")
    assert "the agent changed .git/config" not in incidents and "the agent changed .git/info" not in incidents


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
def test_the_agents_process_group_is_in_the_lease_without_the_sandbox(clone_env, tmp_path, monkeypatch, step):
    monkeypatch.setenv("CLONE_SANDBOX", "off")  # unsandboxed, the agent can read the lease and its own group
    repo = "notes" if step == "bootstrap" else "app"
    seen = tmp_path / "lease-seen.json"
    drive(step, clone_env, tmp_path, [{"copy": str(lease.lease_path(clone_env["workspace"], repo)), "to": str(seen)},
                                      {"write": "work.txt", "text": "w\n"}])
    held = json.loads(seen.read_text())
    assert held["run_id"] == RUN
    assert step_call(clone_env, step)["pgid"] in [g["pgid"] for g in held["groups"]]


def _sleepers(seconds: float) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if f"time.sleep({seconds})" in " ".join(proc.cmdline()) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            pass
    return found


@pytest.mark.parametrize("step", STEPS)
def test_killing_the_sandboxed_agents_lease_groups_leaves_nothing(clone_env, tmp_path, monkeypatch, step):
    # In the sandbox the agent has its own session and PID namespace: its group id inside means nothing
    # outside, and the lease file is not visible to it. What the lease must hold is a group whose kill (as the
    # next run does to a dead holder) ends the agent and everything it started, seen from outside.
    sandboxed(monkeypatch)
    repo = "notes" if step == "bootstrap" else "app"
    seconds = 600 + STEPS.index(step) + 0.375  # unique: the sleeper is found by its command line
    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.update(zip(("workdir", "sha", "error"), drive(
        step, clone_env, tmp_path, [{"spawn_sleeper": seconds}, {"sleep": 120}, {"write": "work.txt", "text": "w\n"}]))))
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while not (found := _sleepers(seconds)) and time.monotonic() < deadline and worker.is_alive():
            time.sleep(0.2)
        assert found, f"the agent never started its sleeper: {outcome}"
        held = json.loads(lease.lease_path(clone_env["workspace"], repo).read_text())
        assert held["run_id"] == RUN and held["groups"], held
        agent = found[0].parent()
        assert "scripted_agent.py" in " ".join(agent.cmdline())
        leaders = {g["pgid"] for g in held["groups"]}
        assert leaders & {p.pid for p in agent.parents()}, (held, [p.pid for p in agent.parents()])
        # From another process, as the next run's task does (in this one, psutil would reap the runner's child).
        killer = subprocess.run([sys.executable, "-c", "import json, sys; from clone.state import lease; "
                                 "print(json.dumps(lease.kill_leftovers(json.loads(sys.argv[1]))))",
                                 json.dumps(held["groups"])], capture_output=True, text=True, timeout=60,
                                env={**os.environ, "PYTHONPATH": str(PLUGINS)})
        assert killer.returncode == 0 and json.loads(killer.stdout), (killer.stdout, killer.stderr, held)
        gone, alive = psutil.wait_procs([found[0], agent], timeout=20)
        assert not alive, f"survived the kill of the lease's groups: {alive}"
    finally:
        for proc in _sleepers(seconds):
            proc.kill()
        worker.join(120)
    assert not worker.is_alive(), "the step did not end when its agent was killed"
    # The killed run is a failed agent run: the step fails (a pass, an autofix, a bootstrap) or, for the
    # verification fix, counts as the failed fix (the pass is blocked); the agent's work is never committed.
    if step == "verify-fix":
        assert outcome["error"] is None and "work.txt" not in git(outcome["workdir"], "ls-tree", "-r", "--name-only",
                                                                   outcome["sha"]).split(), outcome
        assert "broken.flag" not in git(outcome["workdir"], "ls-tree", "-r", "--name-only", outcome["sha"]).split()
    else:
        assert outcome["error"] is not None and outcome["sha"] is None, outcome


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
