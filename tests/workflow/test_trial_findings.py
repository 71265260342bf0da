"""What a new user saw on a first run of ``clone_fleet`` (``make up``, REST trigger), on a real scheduler +
triggerer + API server (``airflow standalone``).

README, "The clone_fleet DAG" and "The run summary": every per-repo task instance is labelled with its repo's
name (also ``autofix`` and ``land`` after a ``ci_wait`` that skipped for want of a GitHub mapping); in direct
mode ``land`` says the push was the landing; a bad repos.yaml entry is a WARNING line of the run's note, not
only a line of discover's log; a run whose discover failed carries discover's error as its note, and the
summary's failure says it too.

The fleet: ``app`` (a real repo with a local bare remote, no ``github:`` mapping, direct mode) and ``other``
(a bad entry: ``push_mode: sideways``). Run 1 works on app; run 2 has an unknown conf key, so discover fails.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tests.airflow_home import ROOT, airflow
from tests.conftest import write_plan
from tests.dag_runs import task_instances, trigger, unpause, wait_finished
from tests.repos import log_subjects, make_remote_and_checkout
from tests.standalone import Api, free_port, launch, log_in_as_admin, our_processes, standalone_env, stop, wait_for

pytestmark = pytest.mark.slow

DAG_ID = "clone_fleet"
CHAIN = ("repo.agent_pass", "repo.push", "repo.ci_wait", "repo.autofix", "repo.land")


def task_log(home: Path, task_id: str) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted((home / "logs").rglob("*"))
                     if p.is_file() and f"task_id={task_id}" in str(p))


@pytest.mark.timeout(1500)
def test_labels_direct_land_bad_entry_warning_and_discover_error_note(tmp_path: Path, clone_env):
    app, app_remote = make_remote_and_checkout(tmp_path, "app")
    other, _ = make_remote_and_checkout(tmp_path, "other")
    clone_env["repos_file"].write_text(f"repos:\n  - path: {app}\n  - path: {other}\n    push_mode: sideways\n")
    write_plan(clone_env["plan"], {"app": {"pass": [{"write": "app.txt", "text": "improved\n"}]}})
    home, dags = tmp_path / "airflow", tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    shutil.copy(ROOT / "dags" / f"{DAG_ID}.py", dags / f"{DAG_ID}.py")
    port = free_port()
    env = standalone_env(home, dags, port, {"AIRFLOW__CORE__PARALLELISM": "4"})
    env.update({k: v for k, v in os.environ.items() if k.startswith(("CLONE_", "SCRIPTED_"))})
    # CLONE_SANDBOX=off: bwrap cannot bind this worktree's .venv python (fixed on branch integ, not here)
    env.update({"CLONE_SCHEDULE": "none", "AIRFLOW_VAR_CLONE_PAUSED": "false", "CLONE_SANDBOX": "off"})
    for args in (("db", "migrate"), ("pools", "set", "clone_agent", "3", "x")):
        done = airflow(env, *args, timeout=180)
        assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    started = time.monotonic()
    standalone, log = launch(env, home)
    try:
        api = Api(port)
        wait_for("every component to report healthy", api.healthy, 300, standalone, log)
        log_in_as_admin(api, home, standalone, log)
        wait_for(f"{DAG_ID} to be parsed", lambda: api.has_dag(DAG_ID), 180, standalone, log)
        unpause(api, DAG_ID)
        first = wait_finished(api, DAG_ID, trigger(api, DAG_ID), 600, standalone, log)
        instances = task_instances(api, DAG_ID, first["dag_run_id"])
        second = wait_finished(api, DAG_ID, trigger(api, DAG_ID, {"bogus_key": 1}), 300, standalone, log)
        took = time.monotonic() - started
    finally:
        leftovers = stop(standalone, home)
    labels = sorted((ti["task_id"], ti.get("rendered_map_index"), ti["state"]) for ti in instances
                    if ti["task_id"] in CHAIN)
    story = (f"first: {first.get('state')} note:\n{first.get('note')}\nsecond: {second.get('state')} note:\n"
             f"{second.get('note')}\nlabels: {labels}")
    print(f"trial findings e2e: {took:.1f}s\n{story}")
    assert leftovers == [] and our_processes(home) == []
    # A clean Ctrl-C (what stop() sends) logs no error: the triggerer's line for its runner is relabelled.
    stopping = log.read_text(errors="replace").partition("SIGINT: stopping Airflow")[2]
    print("\n".join(line for line in stopping.splitlines() if line.startswith("standalone.py")))
    assert "Airflow stopped" in stopping and "[error    ] Trigger runner process has died" not in stopping, stopping

    # Run 1: app pushed straight to main; its chain is labelled "app" all along, also autofix and land.
    assert first["state"] == "success", story
    assert log_subjects(app_remote)[:2] == ["clone: maintenance pass on app", "initial"], story
    assert labels == [("repo.agent_pass", "app", "success"), ("repo.autofix", "app", "skipped"),
                      ("repo.ci_wait", "app", "skipped"), ("repo.land", "app", "skipped"),
                      ("repo.push", "app", "success")], story
    land = task_log(home, "repo.land")
    assert "app: direct mode: the push was the landing" in land, land[-2000:]
    assert "stopped before CI" not in land
    # The bad entry is in the note, as a warning; ci_wait's reason is said once.
    note = first.get("note") or ""
    assert "WARNING: repos.yaml: skipped a bad entry: " in note and "field 'push_mode' must be direct, gated " \
                                                                    "or pr, got 'sideways'" in note, story
    assert "ci_wait skipped: no GitHub mapping" in note and "CI wait skipped" not in note, story

    # Run 2: discover failed; the note and the summary's failure say why.
    assert second["state"] == "failed", story
    assert (second.get("note") or "").startswith("FAILED: discover failed: ConfigError: dag_run.conf: unknown "
                                                 "key(s) bogus_key"), story
    assert "discover failed: ConfigError: dag_run.conf: unknown key(s) bogus_key" in task_log(home, "summary")
