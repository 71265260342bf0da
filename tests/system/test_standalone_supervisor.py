"""The ``make up`` supervisor's restart policy (``include/scripts/standalone.py``), on real child processes.

The end-to-end restart (kill -9 of a real scheduler) is in ``tests/system/test_make_up.py``; this checks the
backoff and the crash-loop limit, which would take minutes to reach with real components.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("standalone_supervisor", ROOT / "include" / "scripts" / "standalone.py")
supervisor = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = supervisor  # dataclasses look their module up
_spec.loader.exec_module(supervisor)


def exited(code: int) -> supervisor.Component:
    component = supervisor.Component("scheduler", [sys.executable, "-c", f"raise SystemExit({code})"])
    component.process = subprocess.Popen(component.argv, process_group=0)
    component.process.wait()
    return component


def test_backoff_doubles_and_the_sixth_exit_in_the_window_gives_up(capsys):
    component = exited(3)
    now = 1000.0
    for restart, backoff in enumerate([1, 2, 4, 8, 16], start=1):
        assert supervisor._check_restart(component, now) is None
        assert component.restart_at == now + backoff
        assert (f"scheduler exited with code 3; restarting in {backoff} s (restart {restart} of at most 5"
                in capsys.readouterr().out)
        now += 10
    gave_up = supervisor._check_restart(component, now)
    assert gave_up is not None and "scheduler exited with code 3 6 times in 300 s: a crash loop" in gave_up


def test_exits_older_than_the_window_are_forgotten():
    component = exited(1)
    for at in (0.0, 1.0, 2.0, 3.0, 4.0):
        assert supervisor._check_restart(component, at) is None
    assert supervisor._check_restart(component, 400.0) is None  # the first five are older than 300 s
    assert component.restart_at == 401.0
