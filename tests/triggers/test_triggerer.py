"""The CI wait under a real scheduler + triggerer (``airflow standalone``), not ``dags test``.

``dags test`` runs deferred triggers inline, in the test process, so it cannot catch a trigger the
triggerer fails to import or run (STACK_NOTES: a trigger under ``dags/`` stayed deferred forever).
Here a throwaway AIRFLOW_HOME (SQLite in WAL mode with the busy timeout of
``clone.config.airflow_sqlite``, parallelism 2, a free API port, as ``include/scripts/airflow_env.sh`` sets
up) runs ``airflow standalone`` with a temporary dags folder holding one probe DAG, and the
project's ``plugins/``. The probe's ``GitHubCIWaitOperator`` checks CI once in the worker, defers,
and the triggerer's ``GitHubCITrigger`` polls a local GitHub API in this process until the run
completes. Every wait is a poll with a deadline; every Airflow process is killed at the end.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from tests.airflow_home import airflow
from tests.fakes.github_api import FakeGitHub
from tests.standalone import Api, free_port, launch, our_processes, standalone_env, stop, wait_for

pytestmark = pytest.mark.slow

TOKEN = "ghp_triggererPROBEtoken0123456789abcdef"
REPO = "acme/probe"
SHA = "5eed" + "0123456789abcdef" * 2 + "abcd"
DAG_ID = "ci_wait_probe"
POLLS_TO_COMPLETE = 6  # the worker's check and then 5 polls by the trigger, CLONE_CI_POLL_SECONDS apart
PROBE_DAG = f'''
import pendulum
from airflow.sdk import DAG

from clone.operators.ci import GitHubCIWaitOperator

with DAG("{DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
    GitHubCIWaitOperator(task_id="ci_wait",
                         push_result={{"repo": "probe", "github": "{REPO}", "pushed_sha": "{SHA}", "pushed": True,
                                       "workdir": "/nonexistent", "branch": "main", "base_sha": "{SHA}",
                                       "head_sha": "{SHA}", "has_remote": True, "push_mode": "direct",
                                       "run_id": "probe", "changed": True, "entry": {{}}}})
'''


def test_ci_wait_defers_to_the_real_triggerer_and_resumes(tmp_path: Path):
    home, dags = tmp_path / "airflow", tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(PROBE_DAG)
    port = free_port()
    db = home / "airflow.db"

    with FakeGitHub(token=TOKEN) as gh:
        gh.add_repo(REPO, complete_after_polls=POLLS_TO_COMPLETE)
        env = standalone_env(home, dags, port, {
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",  # REST without a login
            "AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps({"conn_type": "github", "host": gh.url,
                                                       "password": TOKEN}),
            "CLONE_CI_POLL_SECONDS": "1",
            "CLONE_CI_TIMEOUT_MINUTES": "5",
            "CLONE_CI_SETTLE_SECONDS": "2",
        })
        for name in [k for k in env if k.startswith("CLONE_") and k not in ("CLONE_CI_POLL_SECONDS",
                                                                             "CLONE_CI_TIMEOUT_MINUTES",
                                                                             "CLONE_CI_SETTLE_SECONDS")]:
            del env[name]  # a developer's own Clone settings must not leak in

        migrated = airflow(env, "db", "migrate", timeout=180)
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"

        started = time.monotonic()
        standalone, log = launch(env, home)
        try:
            api = Api(port)
            client, get = api.client, api.get
            wait_for("every component to report healthy", api.healthy, 180, standalone, log)
            wait_for(f"{DAG_ID} to be parsed", lambda: api.has_dag(DAG_ID), 60, standalone, log)
            unpaused = client.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
            assert unpaused.status_code == 200 and unpaused.json()["is_paused"] is False, unpaused.text
            triggered = client.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None})
            assert triggered.status_code == 200, triggered.text
            run_id = triggered.json()["dag_run_id"]
            ti_path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/ci_wait"

            states: list[str | None] = []
            requests_when_deferred: list[int] = []

            def finished() -> bool:
                answer = get(ti_path)
                ok = answer is not None and answer.status_code == 200
                state = answer.json().get("state") if ok else None
                if state and (not states or states[-1] != state):
                    states.append(state)
                    if state == "deferred":
                        requests_when_deferred.append(gh.total_requests)
                return state in ("success", "failed", "upstream_failed", "skipped")

            wait_for("ci_wait to finish", finished, 90, standalone, log, interval=0.1)
            took = time.monotonic() - started

            ti = client.get(ti_path).json()
            xcom = client.get(f"{ti_path}/xcomEntries/return_value", params={"deserialize": True})
            trigger_logs = [p for p in (home / "logs").rglob("*") if p.is_file() and ".trigger." in p.name]
            trigger_text = "\n".join(p.read_text(errors="replace") for p in trigger_logs)
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
                row = conn.execute("SELECT state, try_number FROM task_instance "
                                   "WHERE dag_id = ? AND run_id = ? AND task_id = 'ci_wait'",
                                   (DAG_ID, run_id)).fetchone()
                triggerers = conn.execute("SELECT count(*) FROM job "
                                          "WHERE job_type = 'TriggererJob'").fetchone()
        finally:
            stopping = time.monotonic()
            leftovers = stop(standalone, home)
            stopped_in = time.monotonic() - stopping
        assert gh.server_errors == []

    assert ti["state"] == "success", (states, ti, log.read_text(errors="replace")[-4000:])
    # The task was deferred, and the trigger (not the worker) did the waiting.
    assert "deferred" in states, states
    assert states.index("deferred") < states.index("success")
    assert row[0] == "success" and row[1] == 1, row  # one try: deferring is not a retry
    assert triggerers[0] >= 1
    runs = [r for r in gh.requests if r.path == f"/repos/{REPO}/actions/runs"]
    assert len(runs) >= POLLS_TO_COMPLETE, [r.status for r in runs]
    assert "if-none-match" not in runs[0].headers  # the worker's first check
    assert all(r.headers.get("if-none-match") for r in runs[1:])  # the worker's ETag went to the trigger
    assert any(r.status == 304 and not r.counted for r in runs), [r.status for r in runs]
    assert gh.total_requests > requests_when_deferred[0]  # polled while the task was deferred
    assert trigger_logs, "no trigger log file under AIRFLOW_HOME/logs"
    assert f"CI {REPO}@{SHA[:12]}" in trigger_text, trigger_text[-3000:]
    assert "run(s) in progress" in trigger_text, trigger_text[-3000:]
    # The verdict came back through the trigger event into the task's XCom.
    assert xcom.status_code == 200, xcom.text
    value: Any = xcom.json()["value"]
    value = json.loads(value) if isinstance(value, str) else value
    assert value["pushed_sha"] == SHA and value["ci"]["status"] == "success", value
    assert value["ci"]["sha"] == SHA and value["ci"]["runs"][0]["conclusion"] == "success"
    assert TOKEN not in log.read_text(errors="replace") + trigger_text
    # Nothing of this Airflow outlives the test.
    assert leftovers == [], leftovers
    assert our_processes(home) == []
    print(f"triggerer e2e: standalone start to ci_wait success {took:.1f}s, stopped in {stopped_in:.1f}s; "
          f"states {states}; {len(runs)} runs requests, {sum(r.status == 304 for r in runs)} answered 304")
