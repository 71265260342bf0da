"""The README's backfill claims for ``clone_fleet``, on a real scheduler + triggerer (``airflow standalone``).

README, "One pass per repo, backfills": ``airflow backfill create --dag-id clone_fleet ...`` (scheduler
running, DAG unpaused) makes one run per day, each labelled with its logical date, each working on the repo
as it is now, respecting the per-repo lease, and ``--max-active-runs 1`` makes them run one after another
(a backfill ignores the DAG's own ``max_active_runs``).
README, "The run summary": ``summary`` sets its table as the run's note through the public REST API with
the connection `clone_airflow_api` that `make up` defines for its admin (no password file is read).

A throwaway AIRFLOW_HOME (as in ``tests/triggers/test_triggerer.py``) runs ``airflow standalone`` with a temporary
dags folder holding a copy of ``dags/clone_fleet.py`` and the project's ``plugins/``. The fleet is one real
repo with a local bare remote and no GitHub mapping (the CI wait is skipped; no GitHub API is needed); the
scripted agent appends a line to a file on every pass, so every backfilled run has something to commit and
push. Two past days are backfilled with the README's command; every wait has a deadline; every Airflow
process is killed at the end.

The scheduler's own cron runs are turned off (``[scheduler] use_job_schedule = False``): unpausing an
``@daily`` DAG with ``catchup=False`` immediately starts today's run, and another starts at midnight UTC;
either would compete with the backfill for the repo's lease and make the counts below depend on the clock.
Backfill runs are created by the CLI, not by the cron schedule, so they are not affected.
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

from tests.airflow_home import ROOT, airflow
from tests.conftest import agent_calls, write_plan
from tests.repos import git, log_subjects, make_remote_and_checkout
from tests.standalone import Api, free_port, launch, log_in_as_admin, our_processes, standalone_env, stop, wait_for

pytestmark = pytest.mark.slow

DAG_ID = "clone_fleet"
REPO = "app"
NOTE_HEADER = "| repo | pass |"
FINISHED = ("success", "failed")
PASS_FILE = "clone-pass.log"  # the scripted agent appends one line per pass: every run changes it


def when(value: str | None) -> dt.datetime | None:
    """A timestamp as SQLite holds Airflow's UtcDateTime (naive UTC text), as an aware datetime."""
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def task_logs(home: Path, run_id: str, task_id: str) -> str:
    """Every log file of ``task_id`` in ``run_id`` (all map indexes and attempts), concatenated."""
    folder = home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}"
    if not folder.is_dir():
        return ""
    return "\n".join(p.read_text(errors="replace") for p in sorted(folder.rglob("*")) if p.is_file())


def log_events(text: str) -> list[str]:
    """The ``event`` (and ``reason``, e.g. of a skip) of each JSON log line, else the raw line."""
    events = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            events.append(line)
            continue
        if not isinstance(record, dict):
            events.append(line)
            continue
        reason = record.get("reason") or record.get("error_detail")
        events.append(f"{record.get('event', line)}{f' ({reason})' if reason else ''}")
    return events


def test_backfill_runs_each_day_one_after_another_and_notes_the_summary(tmp_path: Path, clone_env):
    app, remote = make_remote_and_checkout(tmp_path, REPO)
    clone_env["repos_file"].write_text(f"repos:\n  - path: {app}\n")  # no github: mapping, CI wait skipped
    write_plan(clone_env["plan"], {REPO: {"pass": [{"append": PASS_FILE, "text": "one more pass\n"}]}})

    home, dags = tmp_path / "airflow", tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    shutil.copy(ROOT / "dags" / f"{DAG_ID}.py", dags / f"{DAG_ID}.py")
    port = free_port()
    db = home / "airflow.db"
    today = dt.datetime.now(dt.timezone.utc).date()
    days = [today - dt.timedelta(days=3), today - dt.timedelta(days=2)]

    env = standalone_env(home, dags, port, {
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # see the module docstring
        # No SIMPLE_AUTH_MANAGER_ALL_ADMINS: the summary must log in through clone_airflow_api (make up sets it).
        "AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps({"conn_type": "github", "password": "ghp_unused"}),
    })
    env.update({k: v for k, v in os.environ.items() if k.startswith(("CLONE_", "SCRIPTED_"))})
    env["CLONE_SCHEDULE"] = "@daily"

    for args in (("db", "migrate"), ("pools", "set", "clone_agent", "3", "x")):
        done = airflow(env, *args, timeout=180)
        assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"

    def query(sql: str, *params) -> list[tuple]:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
            return conn.execute(sql, params).fetchall()

    started = time.monotonic()
    standalone, log = launch(env, home)
    try:
        api = Api(port)
        client = api.client
        wait_for("every component to report healthy", api.healthy, 90, standalone, log)
        log_in_as_admin(api, home, standalone, log)
        wait_for(f"{DAG_ID} to be parsed", lambda: api.has_dag(DAG_ID), 60, standalone, log)
        unpaused = client.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
        assert unpaused.status_code == 200 and unpaused.json()["is_paused"] is False, unpaused.text

        # The README's command, as written.
        created = airflow(env, "backfill", "create", "--dag-id", DAG_ID, "--from-date", days[0].isoformat(),
                          "--to-date", days[1].isoformat(), "--max-active-runs", "1", timeout=120)
        assert created.returncode == 0, created.stdout + created.stderr
        backfill_rows = query("SELECT id, max_active_runs FROM backfill WHERE dag_id = ?", DAG_ID)

        def backfill_runs() -> list[tuple]:
            return query("SELECT run_id, run_type, logical_date, state, start_date, end_date FROM dag_run "
                         "WHERE dag_id = ? AND run_type = 'backfill' ORDER BY logical_date", DAG_ID)

        wait_for("both backfill runs to finish",
                 lambda: len(rows := backfill_runs()) == 2 and all(r[3] in FINISHED for r in rows),
                 150, standalone, log, interval=1)
        took = time.monotonic() - started

        runs = backfill_runs()
        all_runs = query("SELECT run_id, run_type, state FROM dag_run WHERE dag_id = ?", DAG_ID)
        tis = {(run_id, task_id): (state, when(start), when(end))
               for run_id, task_id, state, start, end in query(
                   "SELECT run_id, task_id, state, start_date, end_date FROM task_instance "
                   "WHERE dag_id = ? AND task_id IN ('repo.agent_pass', 'summary')", DAG_ID)}
        notes = {}
        for run_id, *_ in runs:
            answer = client.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}")
            assert answer.status_code == 200, answer.text
            notes[run_id] = answer.json().get("note")
    finally:
        stopping = time.monotonic()
        leftovers = stop(standalone, home)
        stopped_in = time.monotonic() - stopping

    run_ids = [r[0] for r in runs]
    pass_logs = {run_id: log_events(task_logs(home, run_id, "repo.agent_pass")) for run_id in run_ids}
    summary_logs = {run_id: log_events(task_logs(home, run_id, "summary")) for run_id in run_ids}

    def story() -> str:
        """What each run did, for the failure messages."""
        lines = [f"backfill rows (id, max_active_runs): {backfill_rows}", f"all runs: {all_runs}"]
        for run_id, run_type, logical, state, start, end in runs:
            lines.append(f"{run_id}: {run_type} {state} logical={logical} ran {start} .. {end}")
            for task_id in ("repo.agent_pass", "summary"):
                lines.append(f"    {task_id}: {tis.get((run_id, task_id))}")
            lines += [f"    agent_pass | {e}" for e in pass_logs[run_id]
                      if "another pass" in e or "skip" in e.lower() or "lease" in e]
            lines += [f"    summary | {e}" for e in summary_logs[run_id] if "note" in e or "lease" in e]
        return "\n".join(lines)

    print(f"backfill e2e: standalone start to both runs finished {took:.1f}s, stopped in {stopped_in:.1f}s\n"
          f"{story()}")

    # Nothing of this Airflow outlives the test.
    assert leftovers == [], leftovers
    assert our_processes(home) == []

    # One backfill run per day, each labelled with its logical date, both green.
    assert [r[1] for r in runs] == ["backfill", "backfill"], story()
    assert [when(r[2]).date() for r in runs] == days, story()
    assert [r[3] for r in runs] == ["success", "success"], story()

    # The summary put its table on each run as the note, through the REST API and clone_airflow_api.
    for run_id in run_ids:
        assert notes[run_id] and NOTE_HEADER in notes[run_id], (
            f"{run_id}: note {notes[run_id]!r}; summary log:\n" + "\n".join(summary_logs[run_id][-40:]))
        assert any("the summary is the DAG run's note" in e for e in summary_logs[run_id]), story()

    # The lease: no lease file is left behind, and the repo never had two passes at once: a pass that ran
    # started after the previous pass's run had given the lease back in its summary.
    assert list((clone_env["workspace"] / "leases").glob("*.json")) == [], "a lease file was left behind"
    worked = sorted((tis[(run_id, "repo.agent_pass")][1], run_id) for run_id in run_ids
                    if tis[(run_id, "repo.agent_pass")][0] == "success")
    for (_, before), (start, after) in zip(worked, worked[1:]):
        assert start >= tis[(before, "summary")][1], (
            f"{after} worked on {REPO} while {before} held it\n{story()}")
    for _, run_id in worked[:-1]:
        assert any("released 1 repo lease(s)" in e for e in summary_logs[run_id]), story()

    # README: with --max-active-runs 1, backfilled cycles run one after another.
    first, first_end = runs[0][0], when(runs[0][5])
    second, second_start = runs[1][0], when(runs[1][4])
    assert second_start >= first_end, (
        "the backfill runs overlapped (the second started before the first ended); the backfill's own "
        f"max_active_runs is {[r[1] for r in backfill_rows]} (the DAG's max_active_runs=1 is not applied to "
        f"backfill runs):\n{story()}")

    # So each backfilled day had its pass: neither skipped on the other's lease.
    assert [tis[(run_id, "repo.agent_pass")][0] for run_id in run_ids] == ["success", "success"], story()
    calls = [c for c in agent_calls(clone_env["agent_log"]) if c["repo"] == REPO]
    assert [c["kind"] for c in calls] == ["pass", "pass"], story()
    assert [run_id for _, run_id in worked] == [first, second], story()

    # Each run worked on the repo as it was then (the second on top of the first's push) and pushed a commit.
    assert log_subjects(remote) == [f"clone: maintenance pass on {REPO}"] * 2 + ["initial"]
    trailers = git(remote, "log", "--format=%(trailers:key=Clone-Run,valueonly)", "main").split()
    assert trailers == [second, first], (trailers, story())
    assert git(remote, "show", f"main:{PASS_FILE}") == "one more pass\none more pass"

    # Each run's note is its own summary row: the repo changed (not skipped) in both.
    for run_id in run_ids:
        assert f"| {REPO} | changed |" in notes[run_id], notes[run_id]
