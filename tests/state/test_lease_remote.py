"""A repo with a remote keeps its lease on the remote (``refs/clone/lease/<repo>``), so that workers sharing no
disk (each its own CLONE_WORKSPACE) still exclude each other: real git, a bare remote, concurrent takers."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import threading
from pathlib import Path

import pytest

from clone.state import lease, lease_store

STATES = {"run-1": "running", "run-2": "running"}


def run_state(dag_id: str, run_id: str) -> str | None:
    return STATES.get(run_id, lease.GONE)


@pytest.fixture
def remote(tmp_path: Path):
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(bare)], check=True, timeout=60)
    lease_store.use_remote("app", bare.as_uri())
    yield bare
    lease_store.use_remote("app", None)


def on_remote(bare: Path) -> dict | None:
    shown = subprocess.run(["git", "-C", str(bare), "show", "refs/clone/lease/app:lease.json"],
                           capture_output=True, text=True, timeout=60)
    return json.loads(shown.stdout) if shown.returncode == 0 else None


def test_a_lease_taken_on_one_worker_is_seen_and_released_from_another(tmp_path, remote):
    worker_a, worker_b = tmp_path / "a", tmp_path / "b"
    assert lease.acquire(worker_a, "app", "run-1", 3600, dag_id="clone_fleet", run_state=run_state) is None
    assert on_remote(remote)["run_id"] == "run-1"
    assert not (worker_a / "leases" / "app.json").exists(), "the lease is on the remote, not on a disk"
    held = lease.acquire(worker_b, "app", "run-2", 3600, dag_id="clone_fleet", run_state=run_state)
    assert held and "run-1" in held, held
    lease.beat(worker_b, "app", "run-1", 30)  # the heartbeat reaches the lease from wherever it runs
    assert isinstance(on_remote(remote)["heartbeat"], float)
    assert lease.release_all(worker_b, "run-1") == ["app"]  # the summary, on the other worker
    assert on_remote(remote) == {}, "released: the lease's newest commit says free"
    assert lease.acquire(worker_b, "app", "run-2", 3600, dag_id="clone_fleet", run_state=run_state) is None
    assert on_remote(remote)["run_id"] == "run-2"


def test_a_dead_holders_lease_is_taken_over_across_workers(tmp_path, remote):
    assert lease.acquire(tmp_path / "a", "app", "run-old", 3600, dag_id="clone_fleet", run_state=run_state) is None
    STATES["run-old"] = "failed"
    try:
        assert lease.acquire(tmp_path / "b", "app", "run-2", 3600, dag_id="clone_fleet", run_state=run_state) is None
    finally:
        del STATES["run-old"]
    assert on_remote(remote)["run_id"] == "run-2"


def test_concurrent_takers_on_separate_workers_get_exactly_one_lease(tmp_path, remote):
    takers = [f"run-c{i}" for i in range(6)]
    STATES.update({run: "running" for run in takers})
    start = threading.Barrier(len(takers))

    def take(run: str) -> str | None:
        start.wait(timeout=60)
        return lease.acquire(tmp_path / run, "app", run, 3600, dag_id="clone_fleet", run_state=run_state)

    try:
        with concurrent.futures.ThreadPoolExecutor(len(takers)) as pool:
            answers = dict(zip(takers, pool.map(take, takers)))
    finally:
        for run in takers:
            STATES.pop(run, None)
    winners = [run for run, held in answers.items() if held is None]
    assert len(winners) == 1, answers
    assert on_remote(remote)["run_id"] == winners[0]


def test_process_groups_stay_on_the_worker_that_started_them(tmp_path, remote):
    worker = tmp_path / "a"
    assert lease.acquire(worker, "app", "run-1", 3600, dag_id="clone_fleet", run_state=run_state) is None
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        lease.record_group(worker, "app", "run-1", sleeper.pid)
        local = json.loads(lease_store.groups_path(worker, "app").read_text())
        assert [g["pgid"] for g in local["groups"]] == [sleeper.pid]
        assert "groups" not in on_remote(remote) or on_remote(remote)["groups"] == []
        assert lease.release(worker, "app", "run-1")
        sleeper.wait(timeout=10)  # a 60 s sleep ends within 10 s only when release killed it (psutil reaps it)
    finally:
        sleeper.kill()
        sleeper.wait(timeout=10)
