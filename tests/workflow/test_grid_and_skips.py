"""What a user sees in the UI while ``clone_fleet`` runs, on a real scheduler + triggerer (``airflow standalone``).

README, "The clone_fleet DAG": each mapped instance is labelled with its repo's name in the grid, from the
moment it starts: while its agent runs and while its CI wait is deferred, not only once it finished.
README, "The run summary": a skipped repo's row says why (the skip's own message), a run whose repos were
all skipped for a reason nobody chose says so right under the note's headline, and a repo skipped that way again
in the next run gets its own warning.

The fleet: ``app`` (a real repo with a local bare remote, mapped to the local GitHub API double whose CI run
takes several polls, so ``ci_wait`` defers) and ``busy`` (its lease held by another run, so its pass skips).
The scripted agent sleeps a few seconds before its change, so ``agent_pass`` is seen running. Run 1 works
on both; run 2 (``repos: [busy]``) has only the skip. Both runs have logical dates an hour apart, as
scheduled runs do, so the second finds the first as its previous run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from clone.state import lease, lease_store
from tests.airflow_home import ROOT, airflow
from tests.conftest import write_plan
from tests.fakes.github_api import FakeGitHub
from tests.repos import make_remote_and_checkout
from tests.standalone import Api, free_port, launch, log_in_as_admin, our_processes, standalone_env, stop, wait_for

pytestmark = pytest.mark.slow

DAG_ID = "clone_fleet"
TOKEN = "ghp_gridLABELSprobe0123456789abcdefABCD"
CHAIN = ("repo.agent_pass", "repo.push", "repo.ci_wait", "repo.autofix")
FINISHED = ("success", "failed")
AGENT_SECONDS = 6
CI_POLLS = 8  # CLONE_CI_POLL_SECONDS=1 apart: the CI wait stays deferred for several seconds


def test_grid_labels_while_running_and_deferred_and_skip_reasons_in_the_note(tmp_path: Path, clone_env):
    app, app_remote = make_remote_and_checkout(tmp_path, "app")
    busy, busy_remote = make_remote_and_checkout(tmp_path, "busy")
    clone_env["repos_file"].write_text(f"repos:\n  - path: {app}\n    github: acme/app\n  - path: {busy}\n")
    write_plan(clone_env["plan"], {"app": {"pass": [{"sleep": AGENT_SECONDS},
                                                    {"write": "app.txt", "text": "improved\n"}]}})
    # busy has a remote, so its lease lives there (refs/clone/lease/busy), where the passes look.
    lease_store.use_remote("busy", str(busy_remote))
    try:
        assert lease.acquire(clone_env["workspace"], "busy", "manual__someone_else", 3600) is None
    finally:
        lease_store.use_remote("busy", None)

    home, dags = tmp_path / "airflow", tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    shutil.copy(ROOT / "dags" / f"{DAG_ID}.py", dags / f"{DAG_ID}.py")
    port = free_port()
    observed: list[tuple[str, str, int, str, str | None, float]] = []  # run, task, index, state, label, when

    with FakeGitHub(token=TOKEN) as gh:
        gh.add_repo("acme/app", bare_path=app_remote, complete_after_polls=CI_POLLS)
        env = standalone_env(home, dags, port, {
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps({"conn_type": "github", "host": gh.url, "password": TOKEN}),
        })
        env.update({k: v for k, v in os.environ.items() if k.startswith(("CLONE_", "SCRIPTED_"))})
        env.update({"CLONE_SCHEDULE": "none", "CLONE_CI_POLL_SECONDS": "1", "CLONE_CI_TIMEOUT_MINUTES": "3",
                    "CLONE_CI_START_GRACE_SECONDS": "60", "AIRFLOW_VAR_CLONE_PAUSED": "false"})
        for args in (("db", "migrate"), ("pools", "set", "clone_agent", "3", "x")):
            done = airflow(env, *args, timeout=180)
            assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        with sqlite3.connect(home / "airflow.db") as conn:
            assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"

        started = time.monotonic()
        standalone, log = launch(env, home)
        try:
            api = Api(port)
            client = api.client
            wait_for("every component to report healthy", api.healthy, 90, standalone, log)
            log_in_as_admin(api, home, standalone, log)
            wait_for(f"{DAG_ID} to be parsed", lambda: api.has_dag(DAG_ID), 60, standalone, log)
            unpaused = client.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
            assert unpaused.status_code == 200, unpaused.text

            def run(logical: dt.datetime, conf: dict) -> dict:
                """Trigger a run, watch its chain's instances through the REST API until it finishes."""
                made = client.post(f"/api/v2/dags/{DAG_ID}/dagRuns",
                                   json={"logical_date": logical.isoformat(), "conf": conf})
                assert made.status_code == 200, made.text
                run_id = made.json()["dag_run_id"]
                path = f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}"

                def finished() -> dict | None:
                    answer = api.get(f"{path}/taskInstances?limit=100")
                    if answer is not None and answer.status_code == 200:
                        for ti in answer.json()["task_instances"]:
                            if ti["task_id"] in CHAIN and ti["map_index"] >= 0:
                                observed.append((run_id, ti["task_id"], ti["map_index"], ti["state"],
                                                 ti.get("rendered_map_index"), time.monotonic()))
                    state = api.get(path)
                    body = state.json() if state is not None and state.status_code == 200 else {}
                    return body if body.get("state") in FINISHED else None

                return wait_for(f"run {run_id} to finish", finished, 240, standalone, log, interval=0.3)

            now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
            first = run(now - dt.timedelta(hours=2), {})
            second = run(now - dt.timedelta(hours=1), {"repos": ["busy"]})
            took = time.monotonic() - started
        finally:
            leftovers = stop(standalone, home)
        assert gh.server_errors == []

    summary_log = "\n".join(p.read_text(errors="replace")
                            for p in sorted((home / "logs").rglob("*")) if p.is_file() and "summary" in str(p))
    story = (f"first: {first.get('state')} note:\n{first.get('note')}\nsecond: {second.get('state')} note:\n"
             f"{second.get('note')}\nobserved: {sorted({o[:5] for o in observed}, key=str)}")
    print(f"grid/skips e2e: {took:.1f}s from start to both runs finished\n{story}")
    assert leftovers == [] and our_processes(home) == []

    # The grid: an instance is labelled with its repo's name from its first moments on: the API marks it
    # running when the worker takes it, and the label follows as soon as the worker has rendered the
    # task's inputs (about a second); it stays through the agent's run and the deferral. Queued instances
    # have not started: they show their number.
    final = {(run_id, i): label for run_id, task, i, state, label, _ in observed
             if task == "repo.agent_pass" and state in ("success", "skipped")}
    first_run = [o for o in observed if o[0] == first["dag_run_id"]]
    index = {final[(o[0], o[2])]: o[2] for o in first_run}
    assert set(index) == {"app", "busy"}, story
    live = [o for o in observed if o[3] in ("running", "deferred")]
    assert all(o[4] == final[(o[0], o[2])] for o in live if o[3] == "deferred"), story
    assert any(o[1] == "repo.ci_wait" and o[3] == "deferred" for o in live), "ci_wait never seen deferred"
    delays = []
    for key in sorted({o[:3] for o in live}):
        seen = [o for o in live if o[:3] == key]
        labelled = [o for o in seen if o[4] == final[(o[0], o[2])]]
        if labelled:
            delays.append(labelled[0][5] - seen[0][5])
            assert all(o in labelled for o in seen if o[5] >= labelled[0][5]), (key, seen)  # never numeric again
    agent = [o for o in first_run if o[1] == "repo.agent_pass" and o[2] == index["app"] and o[3] == "running"]
    named = [o for o in agent if o[4] == "app"]
    print(f"grid labels: agent_pass of app seen running {len(agent)} times, {len(named)} with its name; "
          f"first running sighting to label: max {max(delays):.1f}s over {len(delays)} instances")
    assert len(agent) >= 5 and len(named) >= len(agent) - 3, story  # runs AGENT_SECONDS, polled 0.3 s apart
    assert max(delays) < 3, (delays, story)

    # Run 1: app worked, busy's row says why it did nothing; no run-level warning (app did work).
    assert first["state"] == "success", story
    note = first["note"] or ""
    assert "| app | changed |" in note and [line for line in note.splitlines() if line.startswith("| app |")][0] \
        .endswith("| ok |"), story  # its autofix skipped after a green CI: that is no news
    assert "| busy | skipped |" in note and "skipped: another pass is working on this repo (run " \
                                           "manual__someone_else" in note, story
    assert not note.startswith("WARNING"), story

    # Run 2: only busy, skipped on the lease again: said first, and as a repeat of run 1.
    assert second["state"] == "success", story
    lines = (second["note"] or "").splitlines()
    assert lines[0] == "1 repo: 0 pushed, 0 autofixed, 0 failed, 1 skipped; 0 tokens", story  # the headline
    assert lines[2] == "WARNING: every repo was skipped (lease); this run did no work", story
    assert lines[3] == f"WARNING: busy skipped again (lease; also in run {first['dag_run_id']}: lease)", story
    assert "every repo was skipped (lease)" in summary_log, "the summary did not log the warning"
