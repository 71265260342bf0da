"""``make up``'s promises, on the real supervisor (``include/scripts/standalone.py``) and env script.

README, Quick start: every listener is on loopback; the DB (and its WAL files), ``airflow.cfg`` and the
admin password file are 0600 and the password is never printed; ``airflow backfill create`` with other
CLI commands running at the same time never hits ``database is locked``; a component that dies is
restarted (with a log line) and health recovers by itself. A tiny DAG folder keeps this fast; every
wait is a poll with a deadline; everything is stopped as Ctrl-C does at the end.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import signal
import stat
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.airflow_home import airflow
from tests.standalone import Api, free_port, launch, our_processes, standalone_env, stop, wait_for

pytestmark = pytest.mark.slow

DAG_ID = "tiny"
DAYS = 4
TINY_DAG = f'''
import pendulum
from airflow.sdk import DAG, task

with DAG("{DAG_ID}", schedule="@daily", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
    @task
    def one():
        return 1

    @task
    def two(x):
        return x + 1

    two(one())
'''
LOCKED = "database is locked"


def listening_addresses(home: Path, supervisor: int) -> dict[str, list[str]]:
    """``ip:port`` of every listening TCP socket of our processes, by command line.

    Ours: the supervisor's descendants (the api-server's ``setproctitle`` overwrites its
    ``/proc/PID/environ``, so matching on AIRFLOW_HOME alone misses it) and anything with our AIRFLOW_HOME.
    """
    ours = {process.pid: process for process in our_processes(home)}
    ours.update({process.pid: process for process in psutil.Process(supervisor).children(recursive=True)})
    found: dict[str, list[str]] = {}
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in ours:
            try:
                name = " ".join(ours[conn.pid].cmdline())[:90]
            except psutil.NoSuchProcess:
                name = str(conn.pid)
            found.setdefault(name, []).append(f"{conn.laddr.ip}:{conn.laddr.port}")
    return found


def component_pid(supervisor: int, name: str) -> int | None:
    for child in psutil.Process(supervisor).children():
        try:
            if name in child.cmdline()[1:3] and child.status() != psutil.STATUS_ZOMBIE:
                return child.pid
        except psutil.NoSuchProcess:
            pass
    return None


def test_make_up_is_private_survives_a_dead_scheduler_and_backfills_without_locking(tmp_path: Path):
    home, dags = tmp_path / "airflow", tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(TINY_DAG)
    port = free_port()
    env = standalone_env(home, dags, port, {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"})
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] == "clone.config.airflow_sqlite.CONNECT_ARGS"
    migrated = airflow(env, "db", "migrate", timeout=180, template=False)  # the real migration `make up` runs
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr

    supervisor, log = launch(env, home)
    cli_results: list[tuple[tuple[str, ...], int, str]] = []
    try:
        api = Api(port)
        wait_for("every component to report healthy", api.healthy, 120, supervisor, log)
        password_file = home / "simple_auth_manager_passwords.json.generated"
        password = wait_for("the generated admin password",
                            lambda: password_file.exists() and json.loads(password_file.read_text() or "{}")
                            .get("admin"), 30, supervisor, log)
        token = api.client.post("/auth/token", json={"username": "admin", "password": password})
        assert token.status_code == 201, token.text
        api.client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        wait_for(f"{DAG_ID} to be parsed", lambda: api.has_dag(DAG_ID), 60, supervisor, log)

        # Nothing exposed: every listener on loopback (API, both log servers), private files.
        listeners = listening_addresses(home, supervisor.pid)
        addresses = [a for found in listeners.values() for a in found]
        assert any(a.endswith(f":{port}") for a in addresses), listeners
        for port_key in ("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"):
            assert f"127.0.0.1:{env[port_key]}" in addresses, listeners
        assert all(ipaddress.ip_address(a.rsplit(":", 1)[0]).is_loopback for a in addresses), listeners
        time.sleep(6)  # the supervisor re-checks modes every 5 s (the WAL files appear after start)
        for name in ("airflow.db", "airflow.db-wal", "airflow.db-shm", "airflow.cfg", password_file.name):
            mode = stat.S_IMODE((home / name).stat().st_mode)
            assert mode == 0o600, f"{name} is {mode:o}"

        # A backfill while other CLI commands run and the scheduler works: no lock errors anywhere.
        assert airflow(env, "dags", "unpause", DAG_ID).returncode == 0
        today = dt.datetime.now(dt.timezone.utc).date()
        first_day = today - dt.timedelta(days=DAYS)
        busy = threading.Event()

        def cli(*args: str) -> None:
            done = airflow(env, *args, timeout=180)
            cli_results.append((args, done.returncode, done.stdout + done.stderr))

        def keep_running(*commands: tuple[str, ...]) -> None:
            while not busy.is_set():
                for command in commands:
                    cli(*command)

        loops = [threading.Thread(target=keep_running, args=(("dags", "list"), ("variables", "set", "probe", "1"))),
                 threading.Thread(target=keep_running, args=(
                     ("tasks", "states-for-dag-run", DAG_ID, f"{first_day.isoformat()}T00:00:00+00:00"),
                     ("dags", "list-runs", DAG_ID)))]
        for loop in loops:
            loop.start()
        try:
            time.sleep(2)
            cli("backfill", "create", "--dag-id", DAG_ID, "--from-date", first_day.isoformat(),
                "--to-date", (today - dt.timedelta(days=1)).isoformat(), "--max-active-runs", "1")

            def runs() -> list[str]:
                answer = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns")
                return [r["state"] for r in answer.json()["dag_runs"]] if answer and answer.status_code == 200 else []

            wait_for("every backfill run to finish",
                     lambda: len(states := runs()) == DAYS and all(s in ("success", "failed") for s in states),
                     240, supervisor, log, interval=1)
        finally:
            busy.set()
            for loop in loops:
                loop.join(timeout=200)
        assert runs() == ["success"] * DAYS

        # kill -9 the scheduler: a restart line, a new scheduler, fresh heartbeats.
        old = component_pid(supervisor.pid, "scheduler")
        assert old is not None
        killed_at = dt.datetime.now(dt.timezone.utc)
        psutil.Process(old).send_signal(signal.SIGKILL)
        wait_for("the restart line", lambda: "scheduler restarted" in log.read_text(errors="replace"),
                 30, supervisor, log)

        def recovered() -> bool:
            answer = api.get("/api/v2/monitor/health")
            if answer is None or answer.status_code != 200:
                return False
            beat = (answer.json().get("scheduler") or {}).get("latest_scheduler_heartbeat")
            return bool(beat) and dt.datetime.fromisoformat(beat) > killed_at + dt.timedelta(seconds=2) \
                and api.healthy()

        wait_for("the restarted scheduler's heartbeat", recovered, 90, supervisor, log, interval=1)
        new = component_pid(supervisor.pid, "scheduler")
    finally:
        stopping = time.monotonic()
        leftovers = stop(supervisor, home)
        stopped_in = time.monotonic() - stopping

    output = log.read_text(errors="replace")
    assert new is not None and new != old
    assert "scheduler exited with code -9; restarting in 1 s" in output, output[-3000:]
    assert supervisor.returncode == 0, output[-3000:]
    assert leftovers == [] and our_processes(home) == [], leftovers
    # The password is never printed; where it is, is.
    assert password not in output
    assert LOCKED not in output, output[-3000:]
    task_logs = "\n".join(p.read_text(errors="replace") for p in (home / "logs").rglob("*") if p.is_file())
    assert LOCKED not in task_logs
    backfills = [r for r in cli_results if r[0][0] == "backfill"]
    assert [r[1] for r in backfills] == [0], backfills
    locked = [r for r in cli_results if LOCKED in r[2]]
    assert locked == [], locked[0][2][-2000:]
    # Until the backfill has created the first day's run, asking for its task states is an honest error.
    failed = [(r[0], r[2][-500:]) for r in cli_results if r[1] != 0 and "DagRunNotFound" not in r[2]]
    assert failed == [], failed
    assert any(r[0][0] == "tasks" and r[1] == 0 for r in cli_results), "no states-for-dag-run succeeded"
    print(f"make up e2e: {len(cli_results)} CLI commands beside the backfill, 0 locked; stopped in "
          f"{stopped_in:.1f}s; listeners {listeners}")
