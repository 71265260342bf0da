#!/usr/bin/env python
"""Run Clone's local Airflow (what ``make up`` starts): every component supervised, nothing exposed.

Instead of ``airflow standalone`` (which neither restarts a component that dies nor lets the log
servers bind loopback), this starts and watches, each in its own process group:

* ``airflow scheduler --skip-serve-logs``, ``airflow dag-processor``,
  ``airflow triggerer --skip-serve-logs`` and ``airflow api-server`` (on ``[api] host``, 127.0.0.1);
* two log servers (Airflow's own app, ``airflow.utils.serve_logs``) on 127.0.0.1 at
  ``[logging] worker_log_server_port`` (8793) and ``trigger_log_server_port`` (8794). Airflow 3.3's
  built-in ``serve-logs`` binds every interface and has no host setting, hence ``--skip-serve-logs``.

Restart policy: a component that exits while nobody asked it to is restarted after a backoff of
1, 2, 4, 8, 16 s (capped at ``MAX_BACKOFF_SECONDS``) counted over its restarts in the last
``CRASH_WINDOW_SECONDS``, with a ``standalone.py: <name> exited with code N; restarting in S s``
line. A component that dies ``MAX_RESTARTS`` times within ``CRASH_WINDOW_SECONDS`` is a crash loop:
everything is stopped and this script exits 1, naming it.

Exposure: the umask is 077 (everything Airflow creates is private to you), the metadata DB with its
``-wal``/``-shm`` files, ``airflow.cfg`` and the generated admin password file are chmod 0600, and a
``Password for user ...`` line the api-server prints on first start is replaced by the password
file's path. Component output is passed through with a ``name |`` prefix.

The run note's connection: unless ``AIRFLOW_CONN_CLONE_AIRFLOW_API`` is set already, the admin password
is chosen here (kept in the password file, which the api-server then uses as it is) and every component
gets ``AIRFLOW_CONN_CLONE_AIRFLOW_API`` for it, so tasks set run notes through the documented connection.

Stopping: on the first SIGINT/SIGTERM/SIGHUP each component gets exactly one SIGINT (for the
triggerer, its children: interrupting the triggerer itself makes it sleep out a 10 s escalation; its
error line for the runner that then exits is relabelled as the expected stop it is);
after ``STOP_GRACE_SECONDS`` or on a second signal more than 2 s later the remaining process groups
are killed. The API port is checked first, so a second ``make up`` fails fast.

Usage, with ``include/scripts/airflow_env.sh`` sourced (``make up`` does this)::

    python include/scripts/standalone.py
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil  # an Airflow dependency

STOP_GRACE_SECONDS = 20.0
MAX_RESTARTS = 5
CRASH_WINDOW_SECONDS = 300.0
MAX_BACKOFF_SECONDS = 30.0
PRIVATE_FILES = ("airflow.db", "airflow.db-wal", "airflow.db-shm", "airflow.cfg",
                 "simple_auth_manager_passwords.json.generated")
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: What the triggerer logs (as an error) when its trigger runner exits; on a stop, we made it exit: interrupting
#: the triggerer itself instead makes it wait out a 10 s escalation on its runner (measured: 12.1 s to stop).
_RUNNER_DIED = "Trigger runner process has died! Exiting."
_STOPPING = threading.Event()
_PASSWORD_LINE = re.compile(r"Password for user '([^']*)': \S+")
_LOG_SERVER = ("import sys, uvicorn; uvicorn.run('airflow.utils.serve_logs.log_server:get_app', factory=True, "
               "host='127.0.0.1', port=int(sys.argv[1]), log_config=None, access_log=False)")


def say(message: str) -> None:
    print(f"standalone.py: {message}", flush=True)


@dataclass
class Component:
    """One supervised Airflow process and its restart history."""

    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)
    restart_at: float | None = None

    def start(self, password_hint: str) -> None:
        self.process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, process_group=0)
        threading.Thread(target=_relay, args=(self.name, self.process, password_hint), daemon=True).start()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def _relay(name: str, process: subprocess.Popen[bytes], password_hint: str) -> None:
    """Copy a component's output to ours, prefixed, with any generated password replaced (and, once we
    are stopping, the triggerer's error for the trigger runner we interrupted said for what it is)."""
    assert process.stdout is not None
    for raw in process.stdout:
        line = _PASSWORD_LINE.sub(lambda m: f"Password for user '{m.group(1)}' is in {password_hint}",
                                  raw.decode(errors="replace").rstrip("\n"))
        if name == "triggerer" and _STOPPING.is_set() and _RUNNER_DIED in line:
            line = (line.partition("[error")[0] + "[info     ] its trigger runner stopped on our interrupt "
                    f"(Airflow logs that as {_RUNNER_DIED!r}); exiting")
        sys.stdout.write(f"{name:<13}| {line}\n")
        sys.stdout.flush()


def components(airflow: str) -> list[Component]:
    """The processes ``make up`` runs, with the ports and hosts of the environment."""
    worker_logs = os.environ.get("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", "8793")
    trigger_logs = os.environ.get("AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT", "8794")
    return [
        Component("scheduler", [airflow, "scheduler", "--skip-serve-logs"]),
        Component("dag-processor", [airflow, "dag-processor"]),
        Component("triggerer", [airflow, "triggerer", "--skip-serve-logs"]),
        Component("api-server", [airflow, "api-server"]),
        Component("worker-logs", [sys.executable, "-c", _LOG_SERVER, worker_logs]),
        Component("trigger-logs", [sys.executable, "-c", _LOG_SERVER, trigger_logs]),
    ]


def api_connection(password_file: Path, host: str, port: int) -> None:
    """Export ``AIRFLOW_CONN_CLONE_AIRFLOW_API`` (the run note's connection) for the local admin, choosing
    the admin password first when the password file has none; a connection set already wins."""
    if os.environ.get("AIRFLOW_CONN_CLONE_AIRFLOW_API"):
        return
    try:
        users = json.loads(password_file.read_text(encoding="utf-8") or "{}")
    except FileNotFoundError:
        users = {}
    except ValueError as e:
        raise SystemExit(f"error: {password_file} is not JSON ({e}); fix or delete it") from None
    if not isinstance(users, dict):
        raise SystemExit(f"error: {password_file} must hold a JSON object of user: password")
    if not users.get("admin"):
        users["admin"] = secrets.token_urlsafe(12)
        password_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(users) + "\n")
        say(f"the admin password is in {password_file}")
    api_host = "127.0.0.1" if host in ("0.0.0.0", "::", "localhost") else host
    os.environ["AIRFLOW_CONN_CLONE_AIRFLOW_API"] = json.dumps({
        "conn_type": "http", "host": f"http://{api_host}:{port}", "login": "admin", "password": users["admin"]})


def make_private(home: Path) -> None:
    """chmod 0600 the DB, its WAL files, airflow.cfg and the password file, where they exist."""
    for name in PRIVATE_FILES:
        try:
            (home / name).chmod(0o600)
        except FileNotFoundError:
            pass


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def _interrupt(component: Component) -> None:
    """One SIGINT to the component (for the triggerer: to its children, see the module docstring)."""
    if not component.running():
        return
    assert component.process is not None
    try:
        targets = [psutil.Process(component.process.pid)]
        if component.name == "triggerer":
            targets = targets[0].children() or targets
        for target in targets:
            target.send_signal(signal.SIGINT)
    except psutil.NoSuchProcess:
        pass


def _kill_group(component: Component) -> None:
    if component.process is not None:
        try:
            os.killpg(component.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _stop_all(parts: list[Component], kill_now: threading.Event) -> None:
    started = time.monotonic()
    _STOPPING.set()
    for component in parts:
        _interrupt(component)
    deadline = started + STOP_GRACE_SECONDS
    waiting = {c.name for c in parts if c.running()}
    while waiting and time.monotonic() < deadline and not kill_now.is_set():
        time.sleep(0.1)
        for component in parts:
            if component.name in waiting and not component.running():
                waiting.discard(component.name)
                say(f"{component.name} exited {time.monotonic() - started:.1f} s after the stop")
    for component in parts:
        if component.running():
            say(f"{component.name} did not stop in time; killing it")
        _kill_group(component)  # also whatever it left behind in its group (workers, parsers)
        if component.process is not None:
            component.process.wait()


def _check_restart(component: Component, now: float) -> str | None:
    """Schedule a restart of a component that exited; return a crash-loop message to give up."""
    assert component.process is not None
    code = component.process.returncode
    _kill_group(component)  # what it forked (LocalExecutor workers, parsers) is of no use without it
    component.restarts = [t for t in component.restarts if now - t < CRASH_WINDOW_SECONDS] + [now]
    if len(component.restarts) > MAX_RESTARTS:
        return (f"{component.name} exited with code {code} {len(component.restarts)} times in "
                f"{CRASH_WINDOW_SECONDS:.0f} s: a crash loop; giving up and stopping everything")
    backoff = min(MAX_BACKOFF_SECONDS, 2.0 ** (len(component.restarts) - 1))
    say(f"{component.name} exited with code {code}; restarting in {backoff:.0f} s "
        f"(restart {len(component.restarts)} of at most {MAX_RESTARTS} in {CRASH_WINDOW_SECONDS:.0f} s)")
    component.restart_at = now + backoff
    return None


def supervise() -> int:
    """Start every component, restart the ones that die, stop them all on a signal."""
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
    home = Path(os.environ["AIRFLOW_HOME"])
    password_file = os.environ.get("CLONE_ADMIN_PASSWORD_FILE",
                                   str(home / "simple_auth_manager_passwords.json.generated"))
    os.umask(0o077)
    api_connection(Path(os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE") or password_file),
                   host, port)
    make_private(home)

    stop_requests: list[float] = []
    kill_now = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop_requests.append(time.monotonic())
        if len(stop_requests) == 1:
            say(f"{signal.Signals(signum).name}: stopping Airflow")
        elif stop_requests[-1] - stop_requests[0] > 2:
            say("second signal: killing Airflow now")
            kill_now.set()

    for sig in _STOP_SIGNALS:  # before the children start, so they start with SIGINT at its default
        signal.signal(sig, on_signal)
    parts = components(airflow)
    for component in parts:
        component.start(password_file)
    say(f"started {', '.join(f'{c.name} ({c.process.pid})' for c in parts if c.process)}")

    gave_up = None
    next_chmod = 0.0
    while not stop_requests and gave_up is None:
        now = time.monotonic()
        for component in parts:
            if component.restart_at is not None:
                if now >= component.restart_at:
                    component.restart_at = None
                    component.start(password_file)
                    say(f"{component.name} restarted ({component.process.pid})")
            elif not component.running():
                gave_up = _check_restart(component, now)
                if gave_up:
                    break
        if now >= next_chmod:  # the WAL files and the password file appear after start-up
            make_private(home)
            next_chmod = now + 5
        time.sleep(0.2)

    started_stop = time.monotonic()
    _stop_all(parts, kill_now)
    if gave_up:
        print(f"standalone.py: ERROR: {gave_up}", file=sys.stderr, flush=True)
        return 1
    say(f"Airflow stopped {time.monotonic() - (stop_requests[0] if stop_requests else started_stop):.1f} s "
        "after the signal")
    return 0


if __name__ == "__main__":
    sys.exit(supervise())
