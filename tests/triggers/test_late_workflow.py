"""A workflow that registers late, under a real scheduler + triggerer (the ``make up`` supervisor).

The probe DAG is ``ci_wait`` (checks once in the worker, defers to ``GitHubCITrigger`` in the real
triggerer) followed by a gate that fails the run unless CI is green, as gated landing does. The local
GitHub API lists the commit's ``CI`` run (green); a second workflow, ``Lint`` (red), registers only on
the second poll after ``CI`` was seen completed. Before the settle rule the trigger called ``CI``
green on that poll and the run went green with the red workflow missed; now the trigger keeps
polling for ``CLONE_CI_SETTLE_SECONDS``, sees ``Lint``, and the verdict is a failure: the run is red.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.airflow_home import airflow
from tests.fakes.github_api import CIOutcome, FakeGitHub, LateWorkflow
from tests.standalone import Api, free_port, launch, our_processes, standalone_env, stop, wait_for

pytestmark = pytest.mark.slow

TOKEN = "ghp_lateWORKFLOWprobe0123456789abcdef"
REPO = "acme/late"
SHA = "1a7e" + "0123456789abcdef" * 2 + "abcd"
DAG_ID = "late_workflow_probe"
PROBE_DAG = f'''
import pendulum
from airflow.sdk import DAG, task
from airflow.sdk.exceptions import AirflowFailException

from clone.operators.ci import GitHubCIWaitOperator, xcom_dict

with DAG("{DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
    waited = GitHubCIWaitOperator(task_id="ci_wait",
                                  push_result={{"repo": "late", "workdir": "/nonexistent", "branch": "main",
                                               "base_sha": "{SHA}", "head_sha": "{SHA}", "has_remote": True,
                                               "github": "{REPO}", "push_mode": "gated", "run_id": "probe",
                                               "changed": True, "entry": {{}}, "pushed": True,
                                               "pushed_sha": "{SHA}", "push_branch": "clone/probe"}})

    @task
    def gate(result):
        ci = xcom_dict(result)["ci"]
        if ci["status"] != "success":
            raise AirflowFailException("CI " + ci["status"] + ": " + ci["message"])
        return ci["status"]

    gate(waited.output)
'''


def test_a_late_red_workflow_makes_the_run_red_not_green(tmp_path: Path):
    home, dags = tmp_path / "airflow", tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(PROBE_DAG)
    port = free_port()

    with FakeGitHub(token=TOKEN) as gh:
        repo = gh.add_repo(REPO, complete_after_polls=2)
        repo.late_workflows.append(LateWorkflow(
            "Lint", ".github/workflows/lint.yml", after_polls=1,
            ci=lambda sha, attempt: CIOutcome.failed(job="lint", step="Run ruff", log="E501 line too long")))
        knobs = {"CLONE_CI_POLL_SECONDS": "1", "CLONE_CI_TIMEOUT_MINUTES": "5",
                 "CLONE_CI_SETTLE_SECONDS": "4"}
        env = standalone_env(home, dags, port, {
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps({"conn_type": "github", "host": gh.url,
                                                       "password": TOKEN}),
            **knobs,
        })
        for name in [k for k in env if k.startswith("CLONE_") and k not in knobs]:
            del env[name]  # a developer's own Clone settings must not leak in
        migrated = airflow(env, "db", "migrate", timeout=180)
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr

        started = time.monotonic()
        standalone, log = launch(env, home)
        try:
            api = Api(port)
            client = api.client
            wait_for("every component to report healthy", api.healthy, 180, standalone, log)
            wait_for(f"{DAG_ID} to be parsed", lambda: api.has_dag(DAG_ID), 90, standalone, log)
            assert client.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False}).status_code == 200
            triggered = client.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None})
            assert triggered.status_code == 200, triggered.text
            run_path = f"/api/v2/dags/{DAG_ID}/dagRuns/{triggered.json()['dag_run_id']}"
            states: list[str] = []

            def run_finished() -> str | None:
                ti = api.get(f"{run_path}/taskInstances/ci_wait")
                state = ti.json().get("state") if ti is not None and ti.status_code == 200 else None
                if state and (not states or states[-1] != state):
                    states.append(state)
                answer = api.get(run_path)
                ok = answer is not None and answer.status_code == 200
                run_state = answer.json().get("state") if ok else None
                return run_state if run_state in ("success", "failed") else None

            run_state = wait_for("the probe run to finish", run_finished, 240, standalone, log, interval=0.2)
            took = time.monotonic() - started
            xcom = client.get(f"{run_path}/taskInstances/ci_wait/xcomEntries/return_value",
                              params={"deserialize": True})
            trigger_text = "\n".join(p.read_text(errors="replace") for p in (home / "logs").rglob("*")
                                     if p.is_file() and ".trigger." in p.name)
        finally:
            leftovers = stop(standalone, home)
        assert gh.server_errors == []
        runs_polls = gh.count("GET", r"/actions/runs$")
        suites_reads = gh.count("GET", r"/check-suites$")

    value: Any = xcom.json()["value"] if xcom.status_code == 200 else {}
    value = json.loads(value) if isinstance(value, str) else value
    ci = value.get("ci") or {}
    print(f"late workflow e2e: run {run_state}, CI verdict {ci.get('status')!r}, runs seen "
          f"{[(r['name'], r['conclusion']) for r in ci.get('runs') or []]}; {runs_polls} runs polls, "
          f"{suites_reads} check-suites reads; {took:.1f}s from start; ci_wait states {states}")
    assert "deferred" in states, states  # the triggerer, not the worker, did the watching
    assert ci.get("status") == "failure", (ci, log.read_text(errors="replace")[-3000:])
    assert {r["name"]: r["conclusion"] for r in ci["runs"]} == {"CI": "success", "Lint": "failure"}
    assert run_state == "failed"  # the gate saw red: nothing would land
    assert "settling" in trigger_text, trigger_text[-3000:]
    assert suites_reads >= 1
    assert TOKEN not in log.read_text(errors="replace") + trigger_text
    assert leftovers == [] and our_processes(home) == []
