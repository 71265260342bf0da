"""A killed run no longer blocks its repo: the README's lease rule on a real scheduler (``make up``'s standalone).

Issue 10, item 1, reproduced as an operator meets it: run 1's ``agent_pass`` is mid-pass (the scripted agent has
started a sleeper child and sleeps) when its task process is SIGKILLed (``kill -9``), and the operator marks the
run failed through the REST API (``PATCH dagRuns/{id} state=failed``). The lease file still names run 1. Run 2,
triggered at once, must not skip the repo as "another pass is working on this repo": it asks Airflow for run 1's
state, takes the lease over, and does its pass, which lands on the remote; nothing of run 1 survives.

Two ways nothing survives, one per ``CLONE_SANDBOX``: unsandboxed (``off``), the sleeper grandchild outlives its
task (the kernel kills only the agent itself with its dying parent) and run 2 kills it from the lease, which
lists the agent's process group; sandboxed (``required``), the lease lists the sandbox's process group (the
agent inside has its own session and PID namespace), and the sandbox dies with its task (``--die-with-parent``,
its PID namespace taking the sleeper along) before run 2 starts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

import psutil
import pytest

from tests.airflow_home import ROOT, airflow
from tests.conftest import agent_calls, write_plan
from tests.leases import read_lease
from tests.repos import git, log_subjects, make_remote_and_checkout
from tests.standalone import Api, free_port, launch, log_in_as_admin, standalone_env, stop, wait_for
from tests.workflow.test_backfill import log_events, task_logs, when

pytestmark = pytest.mark.slow

DAG_ID = "clone_fleet"
REPO = "app"
PASS_FILE = "clone-pass.log"
SLEEPER_SECONDS = 777.25  # unique: the sleeper is found by its command line


def sleepers() -> list[psutil.Process]:
    """Live sleepers the scripted agent spawned in this test."""
    found = []
    for proc in psutil.process_iter():
        try:
            if (f"time.sleep({SLEEPER_SECONDS})" in " ".join(proc.cmdline())
                    and proc.status() != psutil.STATUS_ZOMBIE):
                found.append(proc)
        except psutil.Error:
            pass
    return found


@pytest.mark.parametrize("sandboxed", [False, True], ids=["unsandboxed", "sandboxed"])
def test_a_killed_runs_lease_is_taken_over_by_the_next_run(tmp_path: Path, clone_env, monkeypatch, sandboxed):
    monkeypatch.setenv("CLONE_SANDBOX", "required" if sandboxed else "off")
    app, remote = make_remote_and_checkout(tmp_path, REPO)
    clone_env["repos_file"].write_text(f"repos:\n  - path: {app}\n")  # no github: mapping, CI wait skipped
    write_plan(clone_env["plan"], {REPO: {"pass": [{"spawn_sleeper": SLEEPER_SECONDS}, {"sleep": 600}]}})

    home, dags = tmp_path / "airflow", tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    shutil.copy(ROOT / "dags" / f"{DAG_ID}.py", dags / f"{DAG_ID}.py")
    port = free_port()
    env = standalone_env(home, dags, port, {
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps({"conn_type": "github", "password": "ghp_unused"}),
    })
    env.update({k: v for k, v in os.environ.items() if k.startswith(("CLONE_", "SCRIPTED_"))})
    env.update({"CLONE_SCHEDULE": "none", "AIRFLOW_VAR_CLONE_PAUSED": "false"})
    for args in (("db", "migrate"), ("pools", "set", "clone_agent", "3", "x")):
        done = airflow(env, *args, timeout=180)
        assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    db = home / "airflow.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"

    def query(sql: str, *params) -> list[tuple]:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
            return conn.execute(sql, params).fetchall()

    def lease() -> dict:  # on the remote: the repo has one (README: Shared state)
        return read_lease(clone_env["workspace"], REPO, remote)

    standalone, log = launch(env, home)
    leftover_sleepers: list[psutil.Process] = []
    try:
        api = Api(port)
        client = api.client
        wait_for("every component to report healthy", api.healthy, 240, standalone, log)
        log_in_as_admin(api, home, standalone, log)
        wait_for(f"{DAG_ID} to be parsed", lambda: api.has_dag(DAG_ID), 60, standalone, log)
        assert client.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False}).status_code == 200

        def trigger() -> str:
            made = client.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": {}})
            assert made.status_code == 200, made.text
            return made.json()["dag_run_id"]

        def run_state(run_id: str) -> str:
            answer = client.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}")
            return answer.json()["state"] if answer.status_code == 200 else ""

        # Run 1: mid-pass, its agent has a sleeper child, and the lease lists a process group.
        first = trigger()

        def mid_pass() -> list[psutil.Process]:
            return sleepers() if lease().get("run_id") == first and lease().get("groups") else []

        leftover_sleepers = wait_for("run 1's agent to be mid-pass with a sleeper", mid_pass, 180, standalone, log)
        agent = leftover_sleepers[0].parent()
        assert "scripted_agent.py" in " ".join(agent.cmdline()), agent.cmdline()
        # The lease lists the group the task started (and its leader's start time, against pid reuse): the
        # agent's own unsandboxed, the sandbox's (an ancestor of the agent) sandboxed.
        groups = {g["pgid"]: g["started"] for g in lease().get("groups") or []}
        leader = next((p for p in [agent, *agent.parents()] if p.pid in groups), None)
        assert leader is not None, (lease(), [p.pid for p in [agent, *agent.parents()]])
        assert abs(groups[leader.pid] - leader.create_time()) < 0.05, (lease(), leader.pid)
        assert (leader.name() == "bwrap") == sandboxed and (leader.pid == agent.pid) != sandboxed, leader.cmdline()
        leftover_sleepers = sleepers()
        task_process = leader.parent()
        assert "airflow" in " ".join(task_process.cmdline()).lower() or task_process.name().startswith(
            ("python", "airflow")), task_process.cmdline()
        os.kill(task_process.pid, signal.SIGKILL)  # kill -9 of the task process, mid-pass
        failed = client.patch(f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(first, safe='')}", json={"state": "failed"})
        assert failed.status_code == 200, failed.text
        marked_failed = time.monotonic()
        wait_for("run 1 to be failed", lambda: run_state(first) == "failed", 30, standalone, log)
        wait_for("run 1's agent to die with its task", lambda: not agent.is_running()
                 or agent.status() == psutil.STATUS_ZOMBIE, 30, standalone, log)
        # The lease still names the killed run.
        assert lease().get("run_id") == first, lease()
        if sandboxed:  # the sandbox took the sleeper along with its task
            wait_for("the sandbox to take the sleeper with it", lambda: not sleepers(), 30, standalone, log)
        else:  # the situation of the issue: the grandchild survived its task
            assert [p.pid for p in sleepers()] == [p.pid for p in leftover_sleepers] != [], "no surviving sleeper"

        # Run 2, triggered at once by the operator: it must do the pass, not skip the repo.
        write_plan(clone_env["plan"], {REPO: {"pass": [{"append": PASS_FILE, "text": "recovered\n"}]}})
        second = trigger()
        triggered = time.monotonic()
        wait_for("run 2 to finish", lambda: run_state(second) in ("success", "failed"), 240, standalone, log,
                 interval=0.5)
        finished = time.monotonic()
        second_state = run_state(second)
        survivors = [p.pid for p in sleepers()]
        tis = {(r, t): (s, when(a), when(b)) for r, t, s, a, b in query(
            "SELECT run_id, task_id, state, start_date, end_date FROM task_instance WHERE dag_id = ? "
            "AND task_id IN ('repo.agent_pass', 'summary')", DAG_ID)}
        runs = {r: (when(a), when(b)) for r, a, b in query(
            "SELECT run_id, start_date, end_date FROM dag_run WHERE dag_id = ?", DAG_ID)}
    finally:
        leftovers = stop(standalone, home)
        for proc in leftover_sleepers:  # not ours to leave running if the takeover failed
            try:
                proc.kill()
            except psutil.Error:
                pass

    pass_log = log_events(task_logs(home, second, "repo.agent_pass"))
    story = "\n".join([f"run 1 {first}, run 2 {second} ({second_state}); tis {tis}",
                       *[f"  agent_pass 2 | {e}" for e in pass_log
                         if "lease of" in e or "killed " in e or "another pass" in e]])
    pass_start, pass_end = tis[(second, "repo.agent_pass")][1:]
    run2_start = runs[second][0]
    print(f"lease recovery: run 2 triggered {triggered - marked_failed:.1f}s after run 1 was marked failed; "
          f"its agent_pass started {(pass_start - run2_start).total_seconds():.1f}s after run 2 started and "
          f"ended {(pass_end - run2_start).total_seconds():.1f}s after; run 2 finished "
          f"{finished - marked_failed:.1f}s after run 1 was marked failed\n{story}")

    assert leftovers == [], leftovers
    assert tis[(second, "repo.agent_pass")][0] == "success", story
    assert second_state == "success", story
    assert not any("another pass is working on this repo" in e for e in pass_log), story
    assert any(f"taking over the lease of dead holder run {first} of {DAG_ID} (its run is failed)" in e
               for e in pass_log), story
    if not sandboxed:  # run 2 killed the surviving sleeper from the lease
        assert any(f"killed 1 process(es) left by run {first}: {leftover_sleepers[0].pid}" in e
                   for e in pass_log), story
    assert not any("survived SIGKILL" in e for e in pass_log), story
    assert survivors == [], f"the sleeper grandchild survived run 2's takeover: {survivors}\n{story}"
    assert log_subjects(remote) == [f"clone: maintenance pass on {REPO}", "initial"]
    assert git(remote, "show", f"main:{PASS_FILE}") == "recovered"
    assert [c["kind"] for c in agent_calls(clone_env["agent_log"]) if c["repo"] == REPO] == ["pass", "pass"]
    assert read_lease(clone_env["workspace"], REPO, remote) == {}, "run 2's summary left the lease behind"
