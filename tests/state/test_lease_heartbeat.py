"""A killed worker's lease is taken over before Airflow notices the worker is gone (real standalone).

Issue 10, item 1, the case nobody marks failed: run 1's ``agent_pass`` is mid-pass (the scripted agent has a
sleeper child and sleeps) when its worker is SIGKILLed: the supervisor that heartbeats the task to Airflow and
the task process under it, as the OOM killer or ``kill -9`` would. Run 1 then shows ``running`` until the
scheduler's ``task_instance_heartbeat_timeout`` (120 s here, 300 s by default). A backfill run reaching the repo
meanwhile:

- with ``CLONE_LEASE_HEARTBEAT_SECONDS=2`` the lease's heartbeat stops with the worker; once it is older than
  4 x 2 s the backfill takes the lease over (``taking over the lease of silent holder``) while run 1 still
  shows running, kills the sleeper grandchild and does its pass, which lands;
- with ``CLONE_LEASE_HEARTBEAT_SECONDS=0`` (no heartbeat, the behaviour before it) the backfill skips the repo
  as busy, and the lease is freed only once Airflow has failed the task and run 1's summary has run.

The test prints the seconds from the kill to the takeover (or to the lease's release) for the issue's note.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import psutil
import pytest

from tests.airflow_home import ROOT, airflow
from tests.conftest import write_plan
from tests.leases import read_lease
from tests.repos import git, log_subjects, make_remote_and_checkout
from tests.standalone import Api, free_port, launch, log_in_as_admin, standalone_env, stop, wait_for
from tests.workflow.test_backfill import log_events, task_logs

pytestmark = pytest.mark.slow

DAG_ID = "clone_fleet"
REPO = "app"
PASS_FILE = "clone-pass.log"
SLEEPER_SECONDS = 778.25  # unique: the sleeper is found by its command line
HEARTBEAT_TIMEOUT = 120  # the scheduler's task_instance_heartbeat_timeout in this test


def sleepers() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if (f"time.sleep({SLEEPER_SECONDS})" in " ".join(proc.cmdline())
                    and proc.status() != psutil.STATUS_ZOMBIE):
                found.append(proc)
        except psutil.Error:
            pass
    return found


@pytest.mark.timeout(900)
@pytest.mark.parametrize("heartbeat", [2, 0], ids=["heartbeat_on", "heartbeat_off"])
def test_a_killed_workers_lease_is_taken_over_while_its_run_still_shows_running(tmp_path: Path, clone_env,
                                                                                 heartbeat):
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
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",  # a loaded 2-core machine: not the 5 s default
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the runs this test makes
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
        "AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps({"conn_type": "github", "password": "ghp_unused"}),
    })
    env.update({k: v for k, v in os.environ.items() if k.startswith(("CLONE_", "SCRIPTED_"))})
    env.update({"CLONE_SCHEDULE": "@daily", "AIRFLOW_VAR_CLONE_PAUSED": "false",
                "CLONE_LEASE_HEARTBEAT_SECONDS": str(heartbeat)})
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
        wait_for(f"{DAG_ID} to be parsed", lambda: api.has_dag(DAG_ID), 180, standalone, log)
        assert client.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False}).status_code == 200
        made = client.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": {}})
        assert made.status_code == 200, made.text
        first = made.json()["dag_run_id"]

        def run_state(run_id: str) -> str:
            for _ in range(3):  # the api-server of a busy machine can be slow to answer
                try:
                    answer = client.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}")
                except httpx.HTTPError:
                    continue
                return answer.json()["state"] if answer.status_code == 200 else ""
            return ""

        def mid_pass() -> list[psutil.Process]:
            held = lease()
            beating = held.get("heartbeat") is not None if heartbeat else "heartbeat" not in held
            return sleepers() if held.get("run_id") == first and beating else []

        leftover_sleepers = wait_for("run 1's agent to be mid-pass with a sleeper", mid_pass, 180, standalone, log)
        agent = leftover_sleepers[0].parent()
        # The task process is the agent's nearest `airflow worker` ancestor: directly its parent unsandboxed,
        # above the sandbox's bwrap processes when the agent runs in bubblewrap.
        task_process = next((p for p in agent.parents() if "airflow worker" in " ".join(p.cmdline())), agent.parent())
        supervisor = task_process.parent()
        # Sandboxed, bwrap is above the agent (its parent, or the egress bridge's in the default model network).
        sandboxed = any(p.name() == "bwrap" for p in agent.parents())
        assert "scripted_agent.py" in " ".join(agent.cmdline()), agent.cmdline()
        assert "airflow worker" in " ".join(task_process.cmdline()), task_process.cmdline()
        assert "airflow worker -- LocalExecutor" in " ".join(supervisor.cmdline()), supervisor.cmdline()
        # kill -9 of the worker: the supervisor first (so that nobody reports the task's end), then the task
        os.kill(supervisor.pid, signal.SIGKILL)
        os.kill(task_process.pid, signal.SIGKILL)
        killed = time.monotonic()
        wait_for("run 1's agent to die with its task", lambda: not agent.is_running()
                 or agent.status() == psutil.STATUS_ZOMBIE, 30, standalone, log)
        if heartbeat:  # a contender arriving before the heartbeat is silent still waits: wait it out
            time.sleep(max(0.0, 4 * heartbeat + 1 - (time.monotonic() - killed)))
        assert run_state(first) == "running" and lease().get("run_id") == first, (run_state(first), lease())

        write_plan(clone_env["plan"], {REPO: {"pass": [{"append": PASS_FILE, "text": "recovered\n"}]}})
        day = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=2)
        created = client.post("/api/v2/backfills", json={
            "dag_id": DAG_ID, "from_date": f"{day}T00:00:00Z", "to_date": f"{day}T00:00:00Z",
            "max_active_runs": 1})
        assert created.status_code == 200, created.text

        def backfill_run() -> str | None:
            rows = query("SELECT run_id FROM dag_run WHERE dag_id = ? AND run_type = 'backfill'", DAG_ID)
            return rows[0][0] if rows else None

        second = wait_for("the backfill run", backfill_run, 60, standalone, log)
        taken = freed = None
        deadline = time.monotonic() + 240 + HEARTBEAT_TIMEOUT
        while time.monotonic() < deadline and (taken is None or freed is None
                                               or run_state(second) not in ("success", "failed")):
            holder = lease().get("run_id")
            if taken is None and holder == second:
                taken = time.monotonic() - killed
                first_state_at_takeover = run_state(first)
            if freed is None and holder != first:
                freed = time.monotonic() - killed
            if not heartbeat and freed is not None and run_state(second) in ("success", "failed"):
                break
            time.sleep(0.5)
        second_state, first_state = run_state(second), run_state(first)
        survivors = [p.pid for p in sleepers()]
        tis = query("SELECT run_id, task_id, state FROM task_instance WHERE dag_id = ? "
                    "AND task_id = 'repo.agent_pass'", DAG_ID)
    finally:
        leftovers = stop(standalone, home)
        for proc in leftover_sleepers:
            try:
                proc.kill()
            except psutil.Error:
                pass

    pass_log = log_events(task_logs(home, second, "repo.agent_pass"))
    story = "\n".join([f"run 1 {first} ({first_state}), backfill {second} ({second_state}); agent_pass {tis}",
                       *[f"  backfill agent_pass | {e}" for e in pass_log
                         if "lease of" in e or "killed " in e or "another pass" in e]])
    print(f"lease heartbeat={heartbeat}s: lease taken over by the backfill "
          f"{'%.1fs' % taken if taken is not None else 'never'} after the kill (run 1 then "
          f"{first_state_at_takeover if taken is not None else '-'}); lease freed "
          f"{'%.1fs' % freed if freed is not None else 'never'} after the kill; scheduler heartbeat timeout "
          f"{HEARTBEAT_TIMEOUT}s; survivors {survivors}\n{story}")

    assert leftovers == [], leftovers
    if heartbeat:
        assert taken is not None and first_state_at_takeover == "running", story
        assert taken < HEARTBEAT_TIMEOUT, story
        assert second_state == "success", story
        assert any(f"taking over the lease of silent holder run {first} of {DAG_ID} (its pass stopped "
                   f"heartbeating" in e and "its run running" in e for e in pass_log), story
        # Unsandboxed the sleeper outlives its task and run 2 kills it; sandboxed (bwrap --die-with-parent,
        # its own PID namespace) it dies with its task. Either way nothing survives (below).
        assert sandboxed or any(f"killed 1 process(es) left by run {first}: {leftover_sleepers[0].pid}" in e
                                for e in pass_log), story
        assert survivors == [], story
        assert log_subjects(remote) == [f"clone: maintenance pass on {REPO}", "initial"]
        assert git(remote, "show", f"main:{PASS_FILE}") == "recovered"
    else:  # what the heartbeat fixes: the repo is skipped until Airflow notices the dead worker
        assert taken is None, story
        assert any("another pass is working on this repo" in e for e in pass_log), story
        assert freed is not None and freed > HEARTBEAT_TIMEOUT, story
        assert log_subjects(remote) == ["initial"]
