"""The lease rules (``clone.state.lease``): a lease of a live run is respected, one of a dead run is taken over at
once and whatever its process groups left behind is killed; the age only counts when the state is unknown.

Real processes throughout: process groups started through ``clone.util.runner`` with a daemon left behind, as an
agent's build or test server would be when its task is SIGKILLed.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

import psutil
import pytest

from clone.state import heartbeat, lease
from clone.util import runner

HOUR = 3600.0


def states(answer: str | None):
    """A ``run_state`` that answers ``answer`` and remembers what it was asked."""
    asked = []

    def run_state(dag_id: str, run_id: str) -> str | None:
        asked.append((dag_id, run_id))
        return answer

    run_state.asked = asked
    return run_state


@pytest.mark.parametrize(("holder", "state", "age", "expected"), [
    ({}, None, 0, "free"),
    ({"run_id": "mine"}, "failed", 0, "ours"),
    ({"run_id": "other"}, "running", 100 * HOUR, "busy"),  # a live run is never stale
    ({"run_id": "other"}, "queued", 0, "busy"),
    ({"run_id": "other"}, "failed", 0, "dead"),  # taken over at once, however young
    ({"run_id": "other"}, "success", 0, "dead"),
    ({"run_id": "other"}, lease.GONE, 0, "dead"),
    ({"run_id": "other"}, None, 0.5 * HOUR, "busy"),  # cannot tell: trusted until stale
    ({"run_id": "other"}, None, 2 * HOUR, "stale"),
])
def test_verdict(holder, state, age, expected):
    now = 10 * HOUR
    if holder:
        holder = {**holder, "since": now - age}
    assert lease.verdict(holder, "mine", state, now, stale_after=HOUR) == expected


def test_a_live_holder_keeps_the_repo_and_is_named(tmp_path):
    assert lease.acquire(tmp_path, "app", "run-1", HOUR, now=0, dag_id="clone_fleet") is None
    alive = states("running")
    holder = lease.acquire(tmp_path, "app", "run-2", HOUR, now=5 * HOUR, dag_id="clone_fleet", run_state=alive)
    assert holder == "run run-1 (since 300 min, running)"
    assert alive.asked == [("clone_fleet", "run-1")]
    assert json.loads(lease.lease_path(tmp_path, "app").read_text())["run_id"] == "run-1"


def test_a_dead_holder_is_taken_over_at_once_with_a_log_line(tmp_path, caplog):
    assert lease.acquire(tmp_path, "app", "run-1", HOUR, now=0, dag_id="clone_fleet") is None
    with caplog.at_level(logging.WARNING, logger="clone.state.lease"):
        assert lease.acquire(tmp_path, "app", "run-2", HOUR, now=1, dag_id="clone_fleet",
                             run_state=states("failed")) is None
    assert "app: taking over the lease of dead holder run run-1 of clone_fleet (its run is failed)" in caplog.text
    data = json.loads(lease.lease_path(tmp_path, "app").read_text())
    assert (data["run_id"], data["dag_id"], data["groups"]) == ("run-2", "clone_fleet", [])


def test_unknown_state_falls_back_to_the_age(tmp_path):
    # A lease written by an older Clone has no dag_id: its state is not asked, its age decides.
    lease.lease_path(tmp_path, "app").parent.mkdir(parents=True)
    lease.lease_path(tmp_path, "app").write_text(json.dumps({"run_id": "old", "since": 0}))
    never = states("failed")
    assert "run old" in lease.acquire(tmp_path, "app", "new", HOUR, now=60, run_state=never)
    assert never.asked == []
    assert lease.acquire(tmp_path, "app", "new", HOUR, now=2 * HOUR, run_state=never) is None
    # A lookup that cannot answer (None) is "cannot tell", not "dead".
    assert "run new" in lease.acquire(tmp_path, "app", "third", HOUR, now=2 * HOUR + 1, run_state=states(None))


def test_dagrun_state_outside_a_task_cannot_tell():
    assert lease.dagrun_state("clone_fleet", "manual__x") is None


def daemon_left_behind(seconds: int) -> tuple[runner.CommandResult, psutil.Process]:
    """Run a command through the runner whose leader exits and leaves a daemon in its group."""
    code = ("import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', "
            f"'import time; time.sleep({seconds})'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL);"
            " print(p.pid)")
    result = runner.run((sys.executable, "-c", code), cwd="/", env={"PATH": "/usr/bin:/bin"}, timeout=30)
    return result, psutil.Process(int(result.stdout.strip()))


def test_a_dead_holders_leftover_processes_are_killed_before_the_takeover(tmp_path, caplog):
    assert lease.acquire(tmp_path, "app", "run-1", HOUR, dag_id="clone_fleet") is None
    seen = []
    with runner.watching(lambda pgid: (seen.append(pgid), lease.record_group(tmp_path, "app", "run-1", pgid)),
                         lambda pgid: lease.forget_group(tmp_path, "app", "run-1", pgid)):
        result, daemon = daemon_left_behind(120)
        # A command that leaves nothing behind is forgotten when it returns.
        runner.run(("true",), cwd="/", env={"PATH": "/usr/bin:/bin"}, timeout=30)
    assert result.ok and daemon.is_running()
    groups = json.loads(lease.lease_path(tmp_path, "app").read_text())["groups"]
    assert [g["pgid"] for g in groups] == [seen[0]], "only the group with a survivor stays listed"
    assert len(seen) == 2
    # Run 1 stays listed as running: its daemon is left alone.
    assert lease.acquire(tmp_path, "app", "run-2", HOUR, dag_id="clone_fleet", run_state=states("running"))
    assert daemon.is_running()
    with caplog.at_level(logging.WARNING, logger="clone.state.lease"):
        assert lease.acquire(tmp_path, "app", "run-2", HOUR, dag_id="clone_fleet",
                             run_state=states("failed")) is None
    gone = not daemon.is_running() or daemon.status() == psutil.STATUS_ZOMBIE
    assert gone, "the dead holder's daemon survived the takeover"
    assert f"killed 1 process(es) left by run run-1: {daemon.pid}" in caplog.text


def test_a_reused_process_group_id_is_not_killed(tmp_path):
    # A live leader whose start time differs from the recorded one: the id now names another group.
    leader = subprocess.Popen((sys.executable, "-c", "import time; time.sleep(60)"), start_new_session=True)
    try:
        started = psutil.Process(leader.pid).create_time()
        assert lease.kill_leftovers([{"pgid": leader.pid, "started": started - 600}]) == []
        assert leader.poll() is None
        assert lease.kill_leftovers([{"pgid": leader.pid, "started": started}]) != []  # the recorded one
        assert not psutil.pid_exists(leader.pid)  # killed and reaped (wait_procs reaps a child)
    finally:
        leader.kill()
    # The leader is gone and every process in the group started before the recorded leader did.
    _, daemon = daemon_left_behind(60)
    try:
        pgid = os.getpgid(daemon.pid)
        assert lease.kill_leftovers([{"pgid": pgid, "started": time.time() + 600}]) == []
        assert daemon.is_running()
        assert lease.kill_leftovers([{"pgid": "x"}, {"pgid": 1, "started": 0}, {"pgid": os.getpgrp(),
                                                                                 "started": 0}]) == []
    finally:
        daemon.kill()


def test_an_earlier_attempt_of_the_same_run_is_cleaned_up_too(tmp_path):
    assert lease.acquire(tmp_path, "app", "run-1", HOUR, dag_id="clone_fleet") is None
    with runner.watching(lambda pgid: lease.record_group(tmp_path, "app", "run-1", pgid), lambda pgid: None):
        _, daemon = daemon_left_behind(120)
    again = lease.acquire(tmp_path, "app", "run-1", HOUR, dag_id="clone_fleet", run_state=states("running"))
    assert again is None
    assert not daemon.is_running() or daemon.status() == psutil.STATUS_ZOMBIE


def test_a_watcher_that_raises_never_fails_the_command():
    def broken(pgid):
        raise RuntimeError("boom")

    with runner.watching(broken, broken):
        assert runner.run(("true",), cwd="/", env={"PATH": "/usr/bin:/bin"}, timeout=30).ok


@pytest.mark.parametrize(("beat", "every", "state", "expected"), [
    (-10.0, 30.0, "running", "busy"),  # beating: a working pass
    (-119.0, 30.0, "running", "busy"),  # three missed beats are not yet silence
    (-121.0, 30.0, "running", "silent"),  # four are, although the run still shows running
    (-121.0, 30.0, None, "silent"),  # also when the state cannot be told
    (-121.0, 30.0, "failed", "dead"),  # a dead run is said as such
    (None, 30.0, "running", "busy"),  # between tasks (cleared heartbeat): the state decides
    ("soon", 30.0, "running", "busy"),  # a malformed heartbeat is no evidence of death
    (-121.0, 0, "running", "busy"),
    (-121.0, True, "running", "busy"),
])
def test_a_holder_that_stopped_heartbeating_is_silent(beat, every, state, expected):
    now = 10 * HOUR
    holder = {"run_id": "other", "since": now - 60, "heartbeat_every": every,
              "heartbeat": now + beat if isinstance(beat, float) else beat}
    assert lease.verdict(holder, "mine", state, now, stale_after=HOUR) == expected


def test_the_heartbeat_is_refreshed_while_the_pass_works_and_cleared_after(tmp_path):
    assert lease.acquire(tmp_path, "app", "run-1", HOUR, dag_id="clone_fleet") is None
    path = lease.lease_path(tmp_path, "app")
    seen = []
    with heartbeat.beating(tmp_path, "app", "run-1", every=0.1):
        for _ in range(6):
            time.sleep(0.1)
            seen.append(json.loads(path.read_text())["heartbeat"])
        alive = states("running")
        assert lease.acquire(tmp_path, "app", "run-2", HOUR, dag_id="clone_fleet", run_state=alive) is not None
    assert len(set(seen)) >= 4 and max(seen) > time.time() - 0.5, seen
    after = json.loads(path.read_text())
    assert after["heartbeat"] is None and after["heartbeat_every"] == 0.1 and after["run_id"] == "run-1"
    # cleared: a later contender waits for the run's state however long the CI wait takes
    assert lease.acquire(tmp_path, "app", "run-2", HOUR, now=time.time() + 600, dag_id="clone_fleet",
                         run_state=states("running")) is not None


def test_a_silent_holder_is_taken_over_with_a_log_line_and_never_written_after(tmp_path, caplog):
    assert lease.acquire(tmp_path, "app", "run-1", HOUR, now=0, dag_id="clone_fleet") is None
    lease.beat(tmp_path, "app", "run-1", every=30)
    path = lease.lease_path(tmp_path, "app")
    beat = json.loads(path.read_text())["heartbeat"]
    caplog.set_level(logging.WARNING, logger="clone.state.lease")
    assert lease.acquire(tmp_path, "app", "run-2", HOUR, now=beat + 125, dag_id="clone_fleet",
                         run_state=states("running")) is None
    assert json.loads(path.read_text())["run_id"] == "run-2"
    assert ("app: taking over the lease of silent holder run run-1 of clone_fleet (its pass stopped "
            "heartbeating 125 s ago (limit 4 x 30 s), its run running)") in caplog.text
    lease.beat(tmp_path, "app", "run-1", every=30)  # the old holder's thread, if it ever wakes up
    assert json.loads(path.read_text()).get("heartbeat") is None


def test_no_heartbeat_when_it_is_turned_off(tmp_path):
    assert lease.acquire(tmp_path, "app", "run-1", HOUR, dag_id="clone_fleet") is None
    with heartbeat.beating(tmp_path, "app", "run-1", every=0):
        pass
    assert "heartbeat" not in json.loads(lease.lease_path(tmp_path, "app").read_text())


def test_the_summarys_release_kills_what_its_killed_pass_left(tmp_path, caplog):
    # A worker killed mid-pass and failed by Airflow later: nobody took the lease over, the run's own
    # summary releases it; the daemon must not outlive the release and write into the next pass.
    assert lease.acquire(tmp_path, "app", "run-1", HOUR, dag_id="clone_fleet") is None
    with runner.watching(lambda pgid: lease.record_group(tmp_path, "app", "run-1", pgid),
                         lambda pgid: lease.forget_group(tmp_path, "app", "run-1", pgid)):
        _, daemon = daemon_left_behind(120)
    assert not lease.release(tmp_path, "app", "run-2") and daemon.is_running()  # not its lease
    with caplog.at_level(logging.WARNING, logger="clone.state.lease"):
        assert lease.release_all(tmp_path, "run-1") == ["app"]
    assert not daemon.is_running() or daemon.status() == psutil.STATUS_ZOMBIE
    assert f"app: killed 1 process(es) left by run run-1: {daemon.pid}" in caplog.text
    assert not lease.lease_path(tmp_path, "app").exists()
