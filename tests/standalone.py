"""A real Airflow started the way ``make up`` starts it, for slow tests.

``include/scripts/standalone.py`` (the ``make up`` supervisor: scheduler, dag-processor, triggerer,
api-server and two loopback log servers) with the environment of ``include/scripts/airflow_env.sh``
itself (sourced by bash, as ``make up`` does), on a throwaway AIRFLOW_HOME and a free API port; only
the dags folder is the test's own. Every wait is a poll with a deadline; :func:`stop` stops the
supervisor as Ctrl-C does and kills whatever is left.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.airflow_home import ROOT, airflow_env

COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


ENV_SCRIPT = ROOT / "include" / "scripts" / "airflow_env.sh"
SUPERVISOR = ROOT / "include" / "scripts" / "standalone.py"


def make_up_env(home: Path, port: int) -> dict[str, str]:
    """What ``source include/scripts/airflow_env.sh`` exports for ``home`` and ``port`` (as in ``make up``).

    The developer's own ``AIRFLOW*`` variables are dropped first, so they cannot leak in.
    """
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k != "CLONE_PROJECT_DIR"}
    base.update({"AIRFLOW_HOME": str(home), "AIRFLOW__API__PORT": str(port)})
    sourced = subprocess.run(["bash", "-c", 'source "$1" && env -0', "bash", str(ENV_SCRIPT)], env=base,
                             capture_output=True, check=True, timeout=30)
    return dict(item.split("=", 1) for item in sourced.stdout.decode().split("\0") if "=" in item)


def standalone_env(home: Path, dags: Path, port: int, extra: dict[str, str]) -> dict[str, str]:
    """The ``make up`` environment on ``home`` serving ``dags`` on ``port`` (plus ``extra``)."""
    env = airflow_env(home, make_up_env(home, port))  # airflow_env's test defaults, then make up's
    env.update({
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__API__WORKERS": "1",
        # Free log-server ports too: two tests (or a developer's `make up`) must not collide.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        **extra,
    })
    return env


def launch(env: dict[str, str], home: Path) -> tuple[subprocess.Popen, Path]:
    """Start the ``make up`` supervisor in its own session; returns it and its log file."""
    log = home / "standalone.log"
    with log.open("wb") as out:
        standalone = subprocess.Popen([sys.executable, str(SUPERVISOR)], env=env, stdin=subprocess.DEVNULL,
                                      stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return standalone, log


class Api:
    """The standalone's REST API: ``get`` answers None while it is not up yet."""

    def __init__(self, port: int) -> None:
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def get(self, path: str) -> httpx.Response | None:
        try:
            return self.client.get(path)
        except httpx.HTTPError:
            return None

    def healthy(self) -> bool:
        answer = self.get("/api/v2/monitor/health")
        if answer is None or answer.status_code != 200:
            return False
        health = answer.json()
        return all((health.get(part) or {}).get("status") == "healthy" for part in COMPONENTS)

    def has_dag(self, dag_id: str) -> bool:
        answer = self.get(f"/api/v2/dags/{dag_id}")
        return answer is not None and answer.status_code == 200


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(what: str, check, timeout: float, standalone: subprocess.Popen, log: Path,
             interval: float = 0.25):
    """Call ``check`` until it returns something truthy; fail after ``timeout`` s or if Airflow exited."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if standalone.poll() is not None:
            pytest.fail(f"the supervisor exited ({standalone.returncode}) while waiting for {what}:\n"
                        f"{log.read_text(errors='replace')[-6000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; standalone log tail:\n"
                        f"{log.read_text(errors='replace')[-6000:]}")
        time.sleep(interval)


def our_processes(home: Path) -> list[psutil.Process]:
    """Live processes started with this AIRFLOW_HOME (everything standalone and its components forked)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            if process.environ().get("AIRFLOW_HOME") == str(home):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def stop(standalone: subprocess.Popen, home: Path) -> list[str]:
    """Stop the supervisor as Ctrl-C does; kill what is left; return what had to be killed one by one."""
    if standalone.poll() is None:
        standalone.send_signal(signal.SIGINT)
        try:
            standalone.wait(timeout=40)
        except subprocess.TimeoutExpired:
            pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(standalone.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + 5
        while our_processes(home) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not our_processes(home):
            break
    try:
        standalone.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    stragglers = our_processes(home)  # they left the group (setsid): ours all the same, killed by pid
    names = []
    for process in stragglers:
        try:
            names.append(f"{process.pid} {' '.join(process.cmdline())}")
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(stragglers, timeout=5)
    return names


def log_in_as_admin(api: Api, home: Path, standalone: subprocess.Popen, log: Path) -> str:
    """Wait for the generated admin password, take a REST token with it and send it on every request of
    ``api.client``; returns the password (for a browser login)."""
    passwords = home / "simple_auth_manager_passwords.json.generated"

    def admin_password() -> str | None:
        try:
            return json.loads(passwords.read_text()).get("admin")
        except (OSError, ValueError):  # not written yet, or half written
            return None

    admin = wait_for("the generated admin password", admin_password, 30, standalone, log)
    token = api.client.post("/auth/token", json={"username": "admin", "password": admin})
    assert token.status_code == 201, token.text
    api.client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return admin
