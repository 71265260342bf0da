"""502 bursts on every GitHub call of the chain, on Airflow started as ``make up`` starts it.

Issue 10, item 5 ("one 5xx fails a chain after the tokens are spent"), end to end: scheduler, triggerer and
LocalExecutor (``tests/standalone.py``), real repos with bare remotes and the local GitHub API. Before each run
the fake GitHub answers the next ``BURST`` requests of each call the chain makes with 502 Bad Gateway: the
workflow-runs list (the CI waits of the worker and of the triggerer), a run's jobs list, a job's log download,
the re-run of failed jobs, and in pr mode opening, updating and merging the pull request. The fleet:

- ``beta`` (direct mode) is red after every pass (the agent writes ``broken.txt``; CI fails while it exists):
  the chain lists the failing jobs, downloads their logs, re-runs them once, then autofixes and waits again;
- ``delta`` (pr mode, automerge) opens a pull request, waits for its CI, describes the result and merges it.

Every run must still end green with the work on the remotes. Only HTTP behaviour is relied on (what the fake
GitHub answered and received), never the client's internals, so the test holds whatever client Clone uses.
It prints runs ok / total and the 502s answered per call (``BURST_REPEATS`` runs, default 3).
``BURST_GITHUB_RETRIES=0`` sets ``CLONE_GITHUB_RETRIES=0`` (no retry, as before the fix): the reproduction,
expected to fail.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.airflow_home import ROOT, airflow
from tests.conftest import agent_calls, write_plan
from tests.fakes.github_api import CIOutcome, FakeGitHub, FakeJob
from tests.repos import log_subjects, make_remote_and_checkout, show
from tests.standalone import Api, free_port, launch, log_in_as_admin, standalone_env, stop, wait_for

pytestmark = pytest.mark.slow

DAG_ID = "clone_fleet"
TOKEN = "ghp_burstSECRETtoken0123456789abcdefABCDE"
REPEATS = int(os.environ.get("BURST_REPEATS", "3"))
BURST = 2  # consecutive 502s per call and run; the client's default retries (4) must ride them out
#: Every GitHub call of the chain, as (method, path regex) of the REST API.
CALLS = {
    "runs list": ("GET", r"^/repos/acme/\w+/actions/runs$"),
    "jobs list": ("GET", r"^/repos/acme/beta/actions/runs/\d+/jobs$"),
    "log download": ("GET", r"^/repos/acme/beta/actions/jobs/\d+/logs$"),
    "re-run": ("POST", r"^/repos/acme/beta/actions/runs/\d+/rerun-failed-jobs$"),
    "PR open": ("POST", r"^/repos/acme/delta/pulls$"),
    "PR update": ("PATCH", r"^/repos/acme/delta/pulls/\d+$"),
    "PR merge": ("PUT", r"^/repos/acme/delta/pulls/\d+/merge$"),
}


def red_while_broken(bare: Path):
    def ci(sha: str, attempt: int) -> CIOutcome:
        if show(bare, sha, "broken.txt") is not None:
            return CIOutcome("failure", [FakeJob("test", "failure", [("pytest", "failure")],
                                                 "E   AssertionError: broken.txt must not exist\n")])
        return CIOutcome()

    return ci


@pytest.mark.timeout(600 + 400 * REPEATS)
def test_502_bursts_on_every_github_call_of_the_chain_still_end_green(tmp_path: Path, clone_env):
    beta, beta_remote = make_remote_and_checkout(tmp_path, "beta")
    delta, delta_remote = make_remote_and_checkout(tmp_path, "delta")
    clone_env["repos_file"].write_text(f"repos:\n  - path: {beta}\n    github: acme/beta\n"
                                       f"  - path: {delta}\n    github: acme/delta\n    push_mode: pr\n")
    write_plan(clone_env["plan"], {
        "beta": {"pass": [{"append": "beta.log", "text": "a pass\n"}, {"write": "broken.txt", "text": "oops\n"}],
                 "autofix": [{"delete": "broken.txt"}]},
        "delta": {"pass": [{"append": "delta.log", "text": "one more pass\n"}]},
    })
    home, dags = tmp_path / "airflow", tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text((ROOT / "dags" / f"{DAG_ID}.py").read_text())
    port = free_port()

    with FakeGitHub(token=TOKEN) as gh:
        gh.add_repo("acme/beta", bare_path=beta_remote, ci=red_while_broken(beta_remote),
                    start_after_polls=1, complete_after_polls=2)
        gh.add_repo("acme/delta", bare_path=delta_remote, start_after_polls=1, complete_after_polls=2)
        env = standalone_env(home, dags, port, {
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",  # a loaded 2-core machine: not the 5 s default
            "AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps({"conn_type": "github", "host": gh.url, "password": TOKEN}),
        })
        env.update({k: v for k, v in os.environ.items() if k.startswith(("CLONE_", "SCRIPTED_"))})
        env.update({"CLONE_SCHEDULE": "none", "AIRFLOW_VAR_CLONE_PAUSED": "false", "CLONE_CI_POLL_SECONDS": "1",
                    "CLONE_CI_TIMEOUT_MINUTES": "5", "CLONE_CI_START_GRACE_SECONDS": "60",
                    "CLONE_DEFER_SETTLE_SECONDS": "10", "CLONE_PR_AUTOMERGE": "1", "GITHUB_TOKEN": TOKEN})
        if os.environ.get("BURST_GITHUB_RETRIES"):
            env["CLONE_GITHUB_RETRIES"] = os.environ["BURST_GITHUB_RETRIES"]
        for args in (("db", "migrate"), ("pools", "set", "clone_agent", "3", "agent processes")):
            done = airflow(env, *args, timeout=180)
            assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        with sqlite3.connect(home / "airflow.db") as db:
            assert db.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"

        standalone, log = launch(env, home)
        outcomes: list[tuple[str, str, Counter]] = []
        try:
            api = Api(port)
            client = api.client
            wait_for("every component to report healthy", api.healthy, 240, standalone, log)
            log_in_as_admin(api, home, standalone, log)
            wait_for(f"{DAG_ID} to be parsed", lambda: api.has_dag(DAG_ID), 180, standalone, log)
            assert client.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False}).status_code == 200
            for _ in range(REPEATS):
                for method, pattern in CALLS.values():
                    gh.inject(pattern, 502, times=BURST, method=method)
                seen = len(gh.requests)
                made = client.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": {}})
                assert made.status_code == 200, made.text
                run_id = made.json()["dag_run_id"]

                def finished(run_id=run_id) -> str | None:
                    try:  # the api-server of a busy machine can be slow to answer: ask again
                        state = client.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}").json()["state"]
                    except httpx.HTTPError:
                        return None
                    return state if state in ("success", "failed") else None

                state = wait_for(f"run {run_id}", finished, 400, standalone, log, interval=1)
                answered = Counter(name for r in gh.requests[seen:] if r.status == 502
                                   for name, (method, pattern) in CALLS.items()
                                   if r.method == method and re.search(pattern, r.path))
                outcomes.append((run_id, state, answered))
        finally:
            stop(standalone, home)
        assert gh.server_errors == []
        pulls = list(gh.repo("acme/delta").pulls.values())

    ok = sum(state == "success" for _, state, _ in outcomes)
    print(f"502 bursts ({BURST} per call per run): runs ok {ok}/{len(outcomes)}; 502s answered per run: "
          + "; ".join(f"{run} {state} {dict(answered)}" for run, state, answered in outcomes))
    story = f"runs: {outcomes}\ntask logs under {home / 'logs'}"
    assert ok == REPEATS, story
    for _, _, answered in outcomes:  # every call of the chain met its burst in every run
        assert answered == Counter({name: BURST for name in CALLS}), story
    calls = agent_calls(clone_env["agent_log"])
    assert sum(c["repo"] == "beta" and c["kind"] == "autofix" for c in calls) == REPEATS, story
    assert log_subjects(beta_remote).count("clone: fix CI failure on beta") == REPEATS
    assert show(beta_remote, "main", "broken.txt") is None
    assert len(pulls) == REPEATS and all(p.merged for p in pulls), [(p.number, p.state, p.merged) for p in pulls]
    assert show(delta_remote, "main", "delta.log") == "one more pass\n" * REPEATS
