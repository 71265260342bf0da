"""Operating the fleet: dry runs, repo subsets, cycles, MAX_HOURS, one pass per repo.

The trigger form's params themselves: tests/config/test_params.py."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import time
from pathlib import Path

import pytest

from clone.state import lease, lease_store
from tests.airflow_home import airflow, migrate
from tests.conftest import agent_calls, write_plan
from tests.repos import log_subjects, make_remote_and_checkout


def _hold(args):
    workspace, run_id, barrier = args
    barrier.wait()
    return lease.acquire(workspace, "app", run_id, stale_after=3600) is None


def test_lease_one_holder_under_concurrency(tmp_path):
    with multiprocessing.Manager() as manager:
        barrier = manager.Barrier(8)
        with multiprocessing.Pool(8) as pool:
            won = pool.map(_hold, [(tmp_path, f"run-{i}", barrier) for i in range(8)])
    assert sum(won) == 1


def test_lease_release_and_stale_takeover(tmp_path):
    assert lease.acquire(tmp_path, "app", "run-1", stale_after=60, now=1000) is None
    assert lease.acquire(tmp_path, "app", "run-1", stale_after=60, now=1001) is None  # re-entrant for its run
    assert "run run-1" in lease.acquire(tmp_path, "app", "run-2", stale_after=60, now=1010)
    assert lease.acquire(tmp_path, "app", "run-2", stale_after=60, now=1100) is None  # stale: taken over
    assert lease.release(tmp_path, "app", "run-1") is False
    assert lease.release_all(tmp_path, "run-2") == ["app"]
    assert not lease.lease_path(tmp_path, "app").exists()


@pytest.fixture
def fleet(tmp_path, clone_env):
    alpha, alpha_remote = make_remote_and_checkout(tmp_path, "alpha")
    beta, beta_remote = make_remote_and_checkout(tmp_path, "beta")
    clone_env["repos_file"].write_text(f"repos:\n  - path: {alpha}\n  - path: {beta}\n")
    write_plan(clone_env["plan"], {"*": {"pass": [{"write": "x.txt", "text": "x\n"}]}})
    env = migrate(tmp_path / "airflow")
    env.update({k: v for k, v in os.environ.items() if k.startswith(("CLONE_", "SCRIPTED_"))})
    return env, {"alpha": alpha_remote, "beta": beta_remote}


def dags_test(env, conf: dict):
    result = airflow(env, "dags", "test", "clone_fleet", "--conf", json.dumps(conf))
    return result.returncode, result.stdout + result.stderr




@pytest.mark.slow
def test_bad_conf_is_rejected_with_the_schema_message(fleet):
    env, _ = fleet
    code, output = dags_test(env, {"tasks_per_repo": 0})
    assert code != 0 and "tasks_per_repo" in output and "minimum" in output.lower()
    code, output = dags_test(env, {"agent": "gpt"})
    assert code != 0 and "'gpt' is not one of" in output


@pytest.mark.slow
def test_dry_run_on_a_subset_for_two_cycles(fleet, clone_env):
    env, remotes = fleet
    code, output = dags_test(env, {"repos": ["alpha"], "dry_run": True, "cycles": 2})
    assert code == 0, output[-4000:]
    assert [c["repo"] for c in agent_calls(clone_env["agent_log"])] == ["alpha"]
    assert "dry run; the commit" in output
    assert log_subjects(remotes["alpha"]) == ["initial"] and log_subjects(remotes["beta"]) == ["initial"]
    assert "cycle 1 of 2 done; triggering cycle 2" in output
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as db:
        runs = db.execute("SELECT run_type, conf FROM dag_run WHERE dag_id = 'clone_fleet' ORDER BY id").fetchall()
    assert len(runs) == 2  # the next cycle is its own DAG run, with the same options
    next_conf = json.loads(runs[1][1])
    assert runs[1][0] == "operator_triggered"
    assert next_conf["_clone_cycle"] == 2 and next_conf["repos"] == ["alpha"] and next_conf["dry_run"] is True


@pytest.mark.slow
def test_unknown_repo_in_the_subset_is_a_clear_error(fleet):
    env, _ = fleet
    code, output = dags_test(env, {"repos": ["nope"]})
    assert code != 0 and "params.repos: nope not found among the enabled repos" in output


@pytest.mark.slow
def test_max_hours_deadline_and_busy_repo_skip(fleet, clone_env):
    env, remotes = fleet
    # beta is busy with another run: its pass must not start. beta has a remote, so its lease lives there
    # (refs/clone/lease/beta), where every worker looks: seed it the way a pass takes it.
    lease_store.use_remote("beta", str(remotes["beta"]))
    try:
        assert lease.acquire(clone_env["workspace"], "beta", "other-run", stale_after=3600) is None
    finally:
        lease_store.use_remote("beta", None)
    assert not lease.lease_path(clone_env["workspace"], "beta").exists(), "the lease is on the remote"
    code, output = dags_test(env, {"repos": ["beta"]})
    assert code == 0, output[-4000:]
    assert "another pass is working on this repo (run other-run" in output
    assert agent_calls(clone_env["agent_log"]) == []
    # A run whose MAX_HOURS deadline has passed starts no pass.
    code, output = dags_test(env, {"repos": ["alpha"], "_clone_deadline": time.time() - 1})
    assert code == 0, output[-4000:]
    assert "the MAX_HOURS deadline" in output and "has passed; no new pass starts" in output
    assert agent_calls(clone_env["agent_log"]) == []
    assert log_subjects(remotes["alpha"]) == ["initial"]


@pytest.mark.slow
def test_unknown_conf_key_is_a_clear_error_and_nothing_runs(fleet, clone_env):
    env, remotes = fleet
    code, output = dags_test(env, {"dryrun": True})
    assert code != 0 and "dag_run.conf: unknown key(s) dryrun; the known params are" in output
    assert agent_calls(clone_env["agent_log"]) == []
    assert log_subjects(remotes["alpha"]) == ["initial"]
