"""A real ``airflow standalone`` (scheduler, dag-processor, triggerer, api-server) for slow tests.

A throwaway AIRFLOW_HOME set up as ``include/scripts/airflow_env.sh`` does (SQLite in WAL mode with
the busy timeout of ``clone.airflow_sqlite``, a free API port), a dags folder of the test's choosing and
the project's ``plugins/``. Every wait is a poll with a deadline; :func:`stop` kills everything.
"""

from __future__ import annotations

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

from tests.airflow_home import AIRFLOW, ROOT, airflow_env

COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


def standalone_env(home: Path, dags: Path, port: int, extra: dict[str, str]) -> dict[str, str]:
    """The environment of a standalone on ``home`` serving ``dags`` on ``port`` (plus ``extra``)."""
    return airflow_env(home, {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "clone.airflow_sqlite.CONNECT_ARGS",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": "clone.airflow_sqlite.ASYNC_CONNECT_ARGS",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        **extra,
    })


def launch(env: dict[str, str], home: Path) -> tuple[subprocess.Popen, Path]:
    """Start ``airflow standalone`` in its own process group; returns it and its log file."""
    log = home / "standalone.log"
    with log.open("wb") as out:
        standalone = subprocess.Popen([AIRFLOW, "standalone"], env=env, stdin=subprocess.DEVNULL,
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
            pytest.fail(f"airflow standalone exited ({standalone.returncode}) while waiting for {what}:\n"
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
    """Kill standalone's process group (SIGTERM, then SIGKILL); return what had to be killed one by one."""
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
