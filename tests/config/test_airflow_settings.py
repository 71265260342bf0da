"""airflow_settings.yaml, its loader (validation, then Airflow's own ``connections|pools|variables
import`` commands) and the shared Airflow environment, on a real migrated DB.

One ``airflow db migrate`` per module (a temp AIRFLOW_HOME with the environment
``include/scripts/airflow_env.sh`` gives a shell); the loader and a small reader script run as
subprocesses, as ``make up`` runs them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV_SCRIPT = ROOT / "include" / "scripts" / "airflow_env.sh"
LOADER = ROOT / "include" / "scripts" / "load_airflow_settings.py"
SETTINGS_FILE = ROOT / "airflow_settings.yaml"
BIN = Path(sys.executable).parent

# Prints what the DB holds, plus the busy timeout Airflow's engine got from CONNECT_ARGS.
READ_DB = """
import json
from airflow import settings
from airflow.models import Connection, Pool, Variable
from airflow.utils.session import create_session
from sqlalchemy import select, text

with create_session() as session:
    print(json.dumps({
        "connections": [
            {"conn_id": c.conn_id, "conn_type": c.conn_type, "host": c.host, "login": c.login,
             "password": c.password, "port": c.port, "extra": c.extra}
            for c in session.scalars(select(Connection))],
        "pools": [{"name": p.pool, "slots": p.slots, "description": p.description}
                  for p in session.scalars(select(Pool))],
        "variables": [{"key": v.key, "value": v.val} for v in session.scalars(select(Variable))],
        "busy_timeout_ms": session.execute(text("PRAGMA busy_timeout")).scalar(),
        "journal_mode": session.execute(text("PRAGMA journal_mode")).scalar(),
    }))
"""


def shared_env(airflow_home: Path) -> dict[str, str]:
    """The environment a shell gets from ``source include/scripts/airflow_env.sh``."""
    clean = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "_AIRFLOW", "CLONE_", "_CLONE", "GITHUB_", "PARALLEL_REPOS"))
    }
    clean["AIRFLOW_HOME"] = str(airflow_home)
    dumped = subprocess.run(
        ["bash", "-c", 'set -eu; source "$1"; env -0', "bash", str(ENV_SCRIPT)],
        env=clean, capture_output=True, check=True, timeout=30,
    ).stdout.decode()
    return dict(item.split("=", 1) for item in dumped.split("\0") if item)


def run(argv: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          check=False)


def load(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, str(LOADER), *args], env)


def read_db(env: dict[str, str]) -> dict:
    result = run([sys.executable, "-c", READ_DB], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The shared environment on a fresh, migrated AIRFLOW_HOME."""
    env = shared_env(tmp_path_factory.mktemp("airflow-home"))
    result = run([str(BIN / "airflow"), "db", "migrate"], env, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return env


@pytest.fixture(scope="module")
def loader():
    """The loader script imported as a module, for its pure parsing functions."""
    spec = importlib.util.spec_from_file_location("load_airflow_settings", LOADER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_env_script_points_airflow_at_the_project(tmp_path: Path) -> None:
    env = shared_env(tmp_path / "home")
    assert env["AIRFLOW_HOME"] == str(tmp_path / "home")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(ROOT / "dags")
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(ROOT / "plugins")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "4"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path}/home/airflow.db"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] == "clone.config.airflow_sqlite.CONNECT_ARGS"
    assert env["PATH"].split(os.pathsep)[0] == str(ROOT / ".venv" / "bin")
    default_home = subprocess.run(
        ["bash", "-c", 'unset AIRFLOW_HOME; source "$1"; echo "$AIRFLOW_HOME"', "bash", str(ENV_SCRIPT)],
        capture_output=True, text=True, check=True, timeout=30, cwd="/",
    ).stdout.strip()
    assert default_home == str(ROOT / ".airflow")


def test_loads_the_project_settings_with_env_expansion(airflow_env: dict[str, str]) -> None:
    env = {**airflow_env, "GITHUB_TOKEN": "tok-123-secret", "GITHUB_API_URL": "http://127.0.0.1:9/api"}
    result = load(env, str(SETTINGS_FILE))
    assert result.returncode == 0, result.stderr
    assert "tok-123-secret" not in result.stdout + result.stderr

    db = read_db(env)
    assert [c for c in db["connections"] if c["conn_id"] == "github_default"] == [{
        "conn_id": "github_default", "conn_type": "github", "host": "http://127.0.0.1:9/api", "login": None,
        "password": "tok-123-secret", "port": None, "extra": None,
    }]
    assert {"name": "clone_agent", "slots": 3,
            "description": "agent processes across all Clone runs (PARALLEL_REPOS)"} in db["pools"]
    assert {"key": "clone_paused", "value": "false"} in db["variables"]
    # CONNECT_ARGS reached Airflow's engine (plugins/ is on sys.path first), and the DB is in WAL mode.
    assert db["busy_timeout_ms"] == 60_000
    assert db["journal_mode"] == "wal"


def test_rerun_is_idempotent_and_updates_in_place(airflow_env: dict[str, str], tmp_path: Path) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        "airflow:\n"
        "  connections:\n"
        "    - {conn_id: idem_http, conn_type: http, conn_host: '${IDEM_HOST:-example.invalid}',\n"
        "       conn_password: '${IDEM_SECRET}', conn_port: 8443, conn_extra: {verify: false}}\n"
        "  pools:\n"
        "    - {pool_name: idem_pool, pool_slot: 2, pool_description: kept as is}\n"
        "  variables:\n"
        "    - {variable_name: idem_var, variable_value: '$$literal ${IDEM_SECRET}'}\n"
    )
    first = {**airflow_env, "IDEM_SECRET": "s3cr3t-one"}
    results = [load(first, str(settings)), load(first, str(settings))]
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    for result in results:  # what Airflow's import commands report, each run
        assert "airflow_settings: Imported connection idem_http" in result.stdout
        assert "airflow_settings: Uploaded 1 pool(s)" in result.stdout
        assert "airflow_settings: 1 of 1 variables successfully updated." in result.stdout
    once = read_db(first)
    assert [c["conn_id"] for c in once["connections"]].count("idem_http") == 1
    assert [p["name"] for p in once["pools"]].count("idem_pool") == 1
    assert [v["key"] for v in once["variables"]].count("idem_var") == 1

    second = {**airflow_env, "IDEM_SECRET": "s3cr3t-two", "IDEM_HOST": "api.example.invalid"}
    result = load(second, str(settings), "--pool-slots", "idem_pool=7")
    assert result.returncode == 0, result.stderr
    assert "s3cr3t" not in result.stdout + result.stderr

    db = read_db(second)
    assert [c for c in db["connections"] if c["conn_id"] == "idem_http"] == [{
        "conn_id": "idem_http", "conn_type": "http", "host": "api.example.invalid", "login": None,
        "password": "s3cr3t-two", "port": 8443, "extra": '{"verify": false}',
    }]
    assert [p for p in db["pools"] if p["name"] == "idem_pool"] == [
        {"name": "idem_pool", "slots": 7, "description": "kept as is"}]
    assert [v for v in db["variables"] if v["key"] == "idem_var"] == [
        {"key": "idem_var", "value": "$literal s3cr3t-two"}]

    # Airflow's import replaces every field but the password, which an empty value leaves as it was
    # (so `make up` without GITHUB_TOKEN exported keeps a token loaded earlier).
    settings.write_text(settings.read_text().replace("conn_password: '${IDEM_SECRET}', ", "")
                        .replace("conn_port: 8443, ", ""))
    result = load(second, str(settings))
    assert result.returncode == 0, result.stderr
    (conn,) = [c for c in read_db(second)["connections"] if c["conn_id"] == "idem_http"]
    assert (conn["password"], conn["port"]) == ("s3cr3t-two", None)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("airflow:\n  connections:\n    - {conn_id: gh, conn_type: github, conn_pasword: x}\n",
         ["airflow.connections[0]", "conn_id 'gh'", "unknown key 'conn_pasword'", "conn_password"]),
        ("airflow:\n  connections:\n    - {conn_id: ok, conn_type: http}\n    - {conn_type: github}\n",
         ["airflow.connections[1]", "missing conn_id"]),
        ("airflow:\n  pools:\n    - {pool_name: p, pool_slots: 3}\n",
         ["airflow.pools[0]", "pool_name 'p'", "unknown key 'pool_slots'"]),
        ("airflow:\n  variables:\n    - {variable_value: 'x'}\n",
         ["airflow.variables[0]", "missing variable_name"]),
        ("airflow:\n  variables:\n    - {variable_name: v, variable_value: '${CLONE_TEST_UNSET_VAR}'}\n",
         ["variable_name 'v'", "CLONE_TEST_UNSET_VAR is not set"]),
        ("airflow:\n  secrets: []\n", ["unknown section secrets"]),
    ],
    ids=["unknown-key", "missing-conn-id", "pool-typo", "missing-variable-name", "unset-env",
         "unknown-section"],
)
def test_invalid_file_fails_naming_the_entry(tmp_path: Path, content: str, expected: list[str]) -> None:
    settings = tmp_path / "airflow_settings.yaml"
    settings.write_text(content)
    # Validation happens before Airflow is imported or any DB is touched: no AIRFLOW_HOME needed.
    result = load({**os.environ, "AIRFLOW_HOME": str(tmp_path / "unused")}, str(settings))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {settings}: ")
    for fragment in expected:
        assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "unused").exists()


def test_unmigrated_db_gets_a_clear_error(tmp_path: Path) -> None:
    result = load(shared_env(tmp_path / "empty-home"), str(SETTINGS_FILE))
    assert result.returncode == 2
    assert "did `airflow db migrate` run" in result.stderr
    assert "Traceback" not in result.stderr


def test_project_settings_file_validates(loader) -> None:
    settings = loader.read_settings(SETTINGS_FILE, {})
    assert [(c.conn_id, c.conn_type, c.host, c.password) for c in settings.connections] == [
        ("github_default", "github", None, None)]
    assert settings.pools == (
        loader.PoolSpec("clone_agent", 3, "agent processes across all Clone runs (PARALLEL_REPOS)"),)
    assert settings.variables == (("clone_paused", "false"),)
    assert "tok" not in repr(loader.read_settings(SETTINGS_FILE, {"GITHUB_TOKEN": "tok"}))


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        ("${A}", {"A": "x"}, "x"),
        ("${A}", {"A": ""}, ""),
        ("${A:-d}", {}, "d"),
        ("${A:-d}", {"A": ""}, "d"),
        ("${A:-}", {}, ""),
        ("pre-${A}-post", {"A": "x"}, "pre-x-post"),
        ("$$A and $${A} and $A", {"A": "x"}, "$A and ${A} and $A"),
    ],
)
def test_expand_env(loader, text: str, environ: dict[str, str], expected: str) -> None:
    assert loader.expand_env(text, environ, "here") == expected


def test_pool_slots_override_needs_a_known_pool(loader) -> None:
    settings = loader.read_settings(SETTINGS_FILE, {})
    assert loader.override_pool_slots(settings, {"clone_agent": 8}).pools[0].slots == 8
    with pytest.raises(loader.SettingsError, match="no pool named nope"):
        loader.override_pool_slots(settings, {"nope": 1})
