"""An autofix queued behind passes goes first, on Airflow started as ``make up`` starts it.

Issue 10, item 7 ("autofix starves"): ``agent_pass`` and ``autofix`` share the ``clone_agent`` pool. Here the
pool has one slot and the fleet five repos: ``red`` (first, so its pass runs first) goes red on CI after its
pass, and four others each have a pass that takes ``PASS_SECONDS``. While the second pass holds the slot, red's
CI fails and its autofix becomes ready next to three queued passes. The order in which the scripted agent was
called (its log) is the order the pool handed out its slot:

- ``priority`` (the shipped DAG: autofix ``priority_weight=AUTOFIX_PRIORITY``, absolute) must start the
  autofix as soon as the slot frees, ahead of the queued passes;
- ``before`` (the DAG as it was: no priority, Airflow's default ``downstream`` weight rule, which weighs a
  pass above an autofix because more tasks follow it: 7 against 4) must start it only after every pass, the
  reproduction (measured: 6th of 6 calls, against 3rd of 6 now); it runs only with ``AUTOFIX_PRIORITY_BEFORE=1``.

Prints the autofix's start position among the agent calls.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import httpx
import pytest

from tests.airflow_home import ROOT, airflow
from tests.conftest import agent_calls, write_plan
from tests.fakes.github_api import CIOutcome, FakeGitHub, FakeJob
from tests.repos import make_remote_and_checkout, show
from tests.standalone import Api, free_port, launch, log_in_as_admin, standalone_env, stop, wait_for

pytestmark = pytest.mark.slow

DAG_ID = "clone_fleet"
TOKEN = "ghp_prioSECRETtoken0123456789abcdefABCDEF"
OTHERS = ("p1", "p2", "p3", "p4")
PASS_SECONDS = 25
#: A DAG file that builds the fleet DAG as it was before repairs had priority (for the reproduction).
BEFORE = '''
import inspect
import clone.workflow.dag_factory as factory

source = inspect.getsource(factory.repo_chain_group)
assert source.count('weight_rule="absolute"') == 2, "the priority arguments moved: update this test"
exec(source.replace('weight_rule="absolute"', 'weight_rule="downstream"'), factory.__dict__)
factory.AUTOFIX_PRIORITY = factory.PASS_PRIORITY = 1
'''


def red_while_broken(bare: Path):
    def ci(sha: str, attempt: int) -> CIOutcome:
        if show(bare, sha, "broken.txt") is not None:
            return CIOutcome("failure", [FakeJob("test", "failure", [("pytest", "failure")], "E   broken\n")])
        return CIOutcome()

    return ci


@pytest.mark.timeout(900)
@pytest.mark.parametrize("variant", ["priority", pytest.param("before", marks=pytest.mark.skipif(
    os.environ.get("AUTOFIX_PRIORITY_BEFORE") != "1", reason="the reproduction; AUTOFIX_PRIORITY_BEFORE=1 runs it"))])
def test_an_autofix_queued_behind_passes_goes_first(tmp_path: Path, clone_env, variant):
    red, red_remote = make_remote_and_checkout(tmp_path, "red")
    entries = [f"  - path: {red}\n    github: acme/red\n"]
    for name in OTHERS:  # no GitHub mapping: their chains end after the push, without an autofix
        checkout, _ = make_remote_and_checkout(tmp_path, name)
        entries.append(f"  - path: {checkout}\n")
    clone_env["repos_file"].write_text("repos:\n" + "".join(entries))
    write_plan(clone_env["plan"], {
        "red": {"pass": [{"append": "red.log", "text": "a pass\n"}, {"write": "broken.txt", "text": "x\n"}],
                "autofix": [{"delete": "broken.txt"}]},
        **{name: {"pass": [{"sleep": PASS_SECONDS}, {"append": f"{name}.log", "text": "a pass\n"}]}
           for name in OTHERS},
    })
    home, dags = tmp_path / "airflow", tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    dag_file = (ROOT / "dags" / f"{DAG_ID}.py").read_text()
    if variant == "before":
        head, _, rest = dag_file.partition("from clone.workflow.dag_factory import")
        dag_file = head + BEFORE + "from clone.workflow.dag_factory import" + rest
    (dags / f"{DAG_ID}.py").write_text(dag_file)
    port = free_port()

    with FakeGitHub(token=TOKEN) as gh:
        gh.add_repo("acme/red", bare_path=red_remote, ci=red_while_broken(red_remote),
                    start_after_polls=1, complete_after_polls=1)
        env = standalone_env(home, dags, port, {
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",  # a loaded 2-core machine: not the 5 s default
            "AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps({"conn_type": "github", "host": gh.url, "password": TOKEN}),
        })
        env.update({k: v for k, v in os.environ.items() if k.startswith(("CLONE_", "SCRIPTED_"))})
        env.update({"CLONE_SCHEDULE": "none", "AIRFLOW_VAR_CLONE_PAUSED": "false", "CLONE_CI_POLL_SECONDS": "1",
                    "CLONE_CI_TIMEOUT_MINUTES": "5", "CLONE_CI_START_GRACE_SECONDS": "60",
                    "CLONE_DEFER_SETTLE_SECONDS": "5", "CLONE_CI_RERUN_FAILED": "0", "GITHUB_TOKEN": TOKEN})
        for args in (("db", "migrate"), ("pools", "set", "clone_agent", "1", "one agent at a time")):
            done = airflow(env, *args, timeout=180)
            assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        with sqlite3.connect(home / "airflow.db") as db:
            assert db.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"

        standalone, log = launch(env, home)
        try:
            api = Api(port)
            client = api.client
            wait_for("every component to report healthy", api.healthy, 240, standalone, log)
            log_in_as_admin(api, home, standalone, log)
            wait_for(f"{DAG_ID} to be parsed", lambda: api.has_dag(DAG_ID), 180, standalone, log)
            assert client.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False}).status_code == 200
            made = client.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": {}})
            assert made.status_code == 200, made.text
            run_id = made.json()["dag_run_id"]

            def finished() -> str | None:
                try:  # the api-server of a busy machine can be slow to answer: ask again
                    state = client.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}").json()["state"]
                except httpx.HTTPError:
                    return None
                return state if state in ("success", "failed") else None

            state = wait_for(f"run {run_id}", finished, 600, standalone, log, interval=1)
            with sqlite3.connect(f"file:{home / 'airflow.db'}?mode=ro", uri=True, timeout=30) as db:
                weights = db.execute("SELECT task_id, max(priority_weight) FROM task_instance WHERE dag_id = ? "
                                     "AND task_id IN ('repo.agent_pass', 'repo.autofix') GROUP BY task_id",
                                     (DAG_ID,)).fetchall()
        finally:
            stop(standalone, home)

    order = [f"{c['repo']}:{c['kind']}" for c in agent_calls(clone_env["agent_log"])]
    position = order.index("red:autofix") + 1 if "red:autofix" in order else None
    print(f"autofix priority [{variant}]: run {state}; red's autofix started {position} of {len(order)} agent "
          f"calls ({' -> '.join(order)}); priority weights {weights}")
    assert state == "success", (order, weights)
    assert order[0] == "red:pass" and len(order) == 6, order
    if variant == "priority":
        # ahead of the passes still queued when its CI went red (at least the last two)
        assert position is not None and position <= 4, order
        assert order[-1] != "red:autofix", order
    else:
        assert position == len(order), order
