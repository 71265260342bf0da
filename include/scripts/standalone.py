#!/usr/bin/env python
"""Run ``airflow standalone`` so that Ctrl-C, ``kill -INT`` or ``kill -TERM`` stops every component.

What this wrapper works around (each observed with Airflow 3.3.2 on this project):

* Started in the background by a non-interactive shell (``make up &``, CI, an IDE), a process
  inherits SIGINT as *ignored*, and ``airflow standalone`` would never see Ctrl-C. The wrapper
  installs its own handlers, so the child starts with SIGINT at its default.
* SIGINT to a whole process group (a terminal's Ctrl-C, ``kill -INT -PGID``) reached the
  scheduler directly and, a moment later, as SIGTERM from standalone; once, the scheduler then
  waited forever on its idle LocalExecutor workers. SIGTERM to standalone itself orphans the
  components. The triggerer took 11 s to honour a SIGTERM, and a SIGINT too in 2 runs of 5.

So standalone runs in its own process group. On the first SIGINT/SIGTERM/SIGHUP the wrapper
sends each component (scheduler, dag-processor, api-server; for the triggerer, its trigger
runner) exactly one SIGINT, waits for them, then sends standalone one SIGINT so it exits
cleanly. Everything is down in about 3 s. A second signal more than 2 s after the first, or
``STOP_GRACE_SECONDS`` passing, kills the whole group. The API port is checked first, so a
second ``make up`` fails fast.

Usage, with ``include/scripts/airflow_env.sh`` sourced (``make up`` does this)::

    python include/scripts/standalone.py [extra airflow standalone args]
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import psutil  # an Airflow dependency

STOP_GRACE_SECONDS = 30.0
COMPONENTS_GRACE_SECONDS = 20.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _running(process: psutil.Process) -> bool:
    """Alive and not a zombie (standalone reaps its components only when it stops)."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and _running(process):
                members.append(process)
        except (ProcessLookupError, PermissionError):
            pass
    return members


def _wait_until_gone(processes: list[psutil.Process], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(_running(process) for process in processes) and time.monotonic() < deadline:
        time.sleep(0.2)


def _interrupt_components(standalone_pid: int) -> list[psutil.Process]:
    """Send one SIGINT to each component standalone started (see the module docstring); return them."""
    try:
        components = psutil.Process(standalone_pid).children()
    except psutil.NoSuchProcess:
        return []
    for component in components:
        try:
            targets = [component]
            if "triggerer" in component.cmdline()[1:]:
                # Interrupting the triggerer's own process races: its supervisor can then sleep out a
                # 10 s escalation delay. Its trigger-runner (and log server) children stop at once, and
                # the triggerer exits cleanly as soon as it sees the runner gone.
                targets = component.children() or targets
            for target in targets:
                target.send_signal(signal.SIGINT)
        except psutil.NoSuchProcess:
            pass
    return components


def _stop(child: subprocess.Popen[bytes], requested_at: float) -> None:
    """Stop the components, then standalone; kill the group if that takes too long."""
    components = _interrupt_components(child.pid)
    _wait_until_gone(components, COMPONENTS_GRACE_SECONDS)
    if child.poll() is None:
        child.send_signal(signal.SIGINT)
    try:
        child.wait(timeout=max(1.0, STOP_GRACE_SECONDS - (time.monotonic() - requested_at)))
    except subprocess.TimeoutExpired:
        print("standalone.py: Airflow did not stop in time; killing it", file=sys.stderr, flush=True)
        _signal_group(child.pid, signal.SIGKILL)
        child.wait()


def supervise(argv: list[str]) -> int:
    """Run standalone in its own process group until it exits or a stop signal arrives."""
    airflow = shutil.which("airflow")
    if airflow is None:
        print("error: `airflow` is not on PATH; run `make install` and source include/scripts/airflow_env.sh",
              file=sys.stderr)
        return 1
    host = os.environ.get("AIRFLOW__API__HOST", "127.0.0.1")
    port = int(os.environ.get("AIRFLOW__API__PORT", "8080"))
    if _port_in_use("127.0.0.1" if host in ("0.0.0.0", "::", "localhost") else host, port):
        print(f"error: port {port} is already in use (another `make up`?); stop it or set AIRFLOW__API__PORT",
              file=sys.stderr)
        return 1

    stop_requests: list[float] = []
    child: subprocess.Popen[bytes] | None = None

    def on_signal(signum: int, _frame: object) -> None:
        stop_requests.append(time.monotonic())
        if len(stop_requests) == 1:
            print(f"standalone.py: {signal.Signals(signum).name}: stopping Airflow", flush=True)
        elif child is not None and stop_requests[-1] - stop_requests[0] > 2:
            print("standalone.py: second signal: killing Airflow now", file=sys.stderr, flush=True)
            _signal_group(child.pid, signal.SIGKILL)

    for sig in _STOP_SIGNALS:  # before the child starts, so it starts with SIGINT at its default
        signal.signal(sig, on_signal)
    child = subprocess.Popen([airflow, "standalone", *argv], stdin=subprocess.DEVNULL, process_group=0)
    while child.poll() is None and not stop_requests:
        time.sleep(0.2)
    if stop_requests:
        _stop(child, stop_requests[0])
    returncode = child.wait()

    # Normally empty by now; a crashed standalone can leave components behind.
    leftovers = _group_members(child.pid)
    if leftovers:
        _signal_group(child.pid, signal.SIGTERM)
        _wait_until_gone(leftovers, 10)
        _signal_group(child.pid, signal.SIGKILL)

    if stop_requests:
        elapsed = time.monotonic() - stop_requests[0]
        print(f"standalone.py: Airflow stopped {elapsed:.1f} s after the signal", flush=True)
    return 128 - returncode if returncode < 0 else returncode  # killed by a signal: the shell's convention


if __name__ == "__main__":
    sys.exit(supervise(sys.argv[1:]))
