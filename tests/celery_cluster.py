"""A real Celery deployment of Clone for slow tests: PostgreSQL, Redis, the ``make up`` supervisor's
components (scheduler, dag-processor, triggerer, api-server) on the CeleryExecutor, and Celery workers that
share no disk.

PostgreSQL and Redis: this project's machines run them on 127.0.0.1:5432 (trust auth) and :6379; the test
gets a private database (dropped afterwards) and a private, empty Redis database number. Where either is not
listening, a private instance is started from Debian's packages (``apt-get install postgresql`` /
``redis-server`` when the binaries are missing; ``initdb`` as the ``postgres`` user) on a free port, and
stopped afterwards: the test never skips for want of them.

Workers: ``airflow celery worker`` each in its own mount and UTS namespace (``unshare -m -u``): its own
hostname (what task instances record) and a private tmpfs over the workspaces directory, so one worker
cannot see what another wrote there, as on two machines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

APT_TIMEOUT = 900


def listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def apt_install(package: str, binary: str) -> None:
    """Install a Debian package unless ``binary`` is already there (root, as on this project's machines)."""
    if shutil.which(binary) or list(Path("/usr/lib/postgresql").glob(f"*/bin/{binary}")):
        return
    for args in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", package]):
        done = subprocess.run(args, capture_output=True, text=True, timeout=APT_TIMEOUT,
                              env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def _pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(found[-1]) if found else (shutil.which(name) or name)


@contextlib.contextmanager
def postgres(tmp: Path) -> Iterator[str]:
    """A SQLAlchemy URL of a private, empty database (on 127.0.0.1:5432, else on a private instance)."""
    import psycopg2

    port, server = 5432, None
    if not listening(port) or os.environ.get("CLONE_TEST_PRIVATE_SERVICES"):
        apt_install("postgresql", "initdb")
        # initdb and postgres run as the postgres user, who cannot enter pytest's private (0700) folders.
        tmp = Path(tempfile.mkdtemp(prefix="clone-test-pg-"))
        port, data = free_port(), tmp / "pgdata"
        data.mkdir()
        shutil.chown(data, "postgres")
        shutil.chown(tmp, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
        subprocess.run([*run_as, _pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                       check=True, capture_output=True, timeout=120)
        server = subprocess.Popen([*run_as, _pg_bin("postgres"), "-D", str(data), "-p", str(port),
                                   "-k", str(tmp), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                                  stdout=subprocess.DEVNULL, stderr=(tmp / "postgres.log").open("wb"),
                                  start_new_session=True)
    deadline = time.monotonic() + 60
    while True:  # listening is not enough: "the database system is starting up" refuses connections
        try:
            admin = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
            break
        except psycopg2.OperationalError:
            assert server is None or server.poll() is None, (tmp / "postgres.log").read_text()
            assert time.monotonic() < deadline, "PostgreSQL did not accept connections within 60 s"
            time.sleep(0.2)
    name = f"clone_test_{secrets.token_hex(4)}"
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
        if server is not None:  # SIGINT (fast shutdown) to its own group: runuser does not pass it on
            os.killpg(server.pid, signal.SIGINT)
            server.wait(timeout=60)
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def redis(tmp: Path) -> Iterator[str]:
    """A broker URL of an empty, private Redis database (on 127.0.0.1:6379, else a private instance)."""
    import redis as redis_client

    port, server = 6379, None
    if not listening(port) or os.environ.get("CLONE_TEST_PRIVATE_SERVICES"):
        apt_install("redis-server", "redis-server")
        port = free_port()
        server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", str(tmp)],
                                  stdout=(tmp / "redis.log").open("wb"), stderr=subprocess.STDOUT,
                                  start_new_session=True)
        deadline = time.monotonic() + 30
        while not listening(port):
            assert server.poll() is None and time.monotonic() < deadline, (tmp / "redis.log").read_text()
            time.sleep(0.1)
    numbers = list(range(1, 16))
    secrets.SystemRandom().shuffle(numbers)
    chosen = None
    for number in numbers:  # an empty database nobody else uses right now (claimed with a marker key)
        client = redis_client.Redis(host="127.0.0.1", port=port, db=number)
        if client.dbsize() == 0 and client.set("clone-test-claim", "1", nx=True, ex=3600):
            chosen = client
            break
    assert chosen is not None, "no empty Redis database number (1-15) is free"
    try:
        yield f"redis://127.0.0.1:{port}/{number}"
    finally:
        chosen.flushdb()
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


def celery_env(env: dict[str, str], sql_url: str, broker_url: str) -> dict[str, str]:
    """The README's "Scale out" settings on top of a ``make up`` environment."""
    from cryptography.fernet import Fernet

    env = {k: v for k, v in env.items() if not k.startswith("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS")}
    env.update({
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_url,
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + sql_url,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        # The 5 s default let a task's first execution API call time out on a loaded 2-core machine.
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
        "AIRFLOW__CORE__PARALLELISM": "8",
        # Every component must agree on these (each would otherwise make up its own).
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        # What a task instance records as its host: the worker's own (UTS namespace) hostname.
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "socket.gethostname",
    })
    return env


@dataclasses.dataclass
class Worker:
    name: str
    workspace: Path
    process: subprocess.Popen
    log: Path


def start_worker(env: dict[str, str], name: str, workspaces: Path, logs: Path, *,
                 private: bool = True) -> Worker:
    """``airflow celery worker`` in its own mount and UTS namespace, hostname ``name``, with a private tmpfs
    over ``workspaces`` and ``CLONE_WORKSPACE=workspaces/name``. ``private=False``: no tmpfs, and every such
    worker shares ``CLONE_WORKSPACE=workspaces/shared`` (one disk, as on one machine)."""
    workspace = workspaces / (name if private else "shared")
    mount = 'mount -t tmpfs -o mode=0700 clone-ws "$2"; ' if private else ""
    script = f'set -e; hostname "$1"; {mount}mkdir -p "$3"; shift 3; exec "$@"'

    airflow = str(Path(env["PATH"].split(":")[0]) / "airflow")
    argv = ["unshare", "-m", "-u", "--propagation", "private", "sh", "-c", script, "sh", name, str(workspaces),
            str(workspace), airflow, "celery", "worker", "--celery-hostname", name, "--skip-serve-logs",
            "--concurrency", "2", "--without-mingle", "--without-gossip"]
    log = logs / f"worker-{name}.log"
    process = subprocess.Popen(argv, env={**env, "CLONE_WORKSPACE": str(workspace)}, stdin=subprocess.DEVNULL,
                               stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    return Worker(name, workspace, process, log)


def stop_worker(worker: Worker) -> None:
    """Warm shutdown (SIGTERM to the worker's own process group), then kill what is left of that group."""
    if worker.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.process.pid, signal.SIGTERM)
        try:
            worker.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        worker.process.wait(timeout=10)


def require_unshare() -> None:
    probe = subprocess.run(["unshare", "-m", "-u", "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode:
        pytest.fail(f"unshare -m -u does not work here (needs root): {probe.stderr.strip()}")
