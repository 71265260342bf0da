"""tests/db_template.py: what counts as the same DB setup, and what a replay writes back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import db_template

MIGRATE = ["/venv/bin/airflow", "db", "migrate"]


@pytest.fixture(autouse=True)
def fresh_templates(monkeypatch):
    monkeypatch.setattr(db_template, "_templates", {})
    monkeypatch.setattr(db_template, "ENABLED", True)


def fake_airflow(home: Path, calls: list[str], tag: str = "x"):
    """Stands in for the CLI: writes a DB and a cfg naming the home, as `db migrate` does."""
    def real() -> subprocess.CompletedProcess:
        calls.append(str(home))
        home.mkdir(parents=True, exist_ok=True)
        (home / "airflow.db").write_bytes(b"SQLite " + tag.encode())
        (home / "airflow.cfg").write_text(f"sql_alchemy_conn = sqlite:///{home}/airflow.db\n")
        (home / "airflow.cfg").chmod(0o600)
        (home / "logs").mkdir(exist_ok=True)
        return subprocess.CompletedProcess(MIGRATE, 0, f"migrated {home}\n", "")
    return real


def env_for(home: Path, port: int, **extra: str) -> dict[str, str]:
    return {"AIRFLOW_HOME": str(home), "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home.parent / "dags"), "PATH": str(port), **extra}


def test_a_second_home_gets_the_recorded_files_with_its_own_path(tmp_path):
    calls: list[str] = []
    first, second = tmp_path / "one" / "airflow", tmp_path / "two" / "airflow"
    db_template.run(env_for(first, 1111), MIGRATE, fake_airflow(first, calls))
    answer = db_template.run(env_for(second, 2222), MIGRATE, fake_airflow(second, calls))
    assert calls == [str(first)]  # ports, tmp dirs and non-Airflow variables are not part of the key
    assert (second / "airflow.db").read_bytes() == b"SQLite x"
    assert (second / "airflow.cfg").read_text() == f"sql_alchemy_conn = sqlite:///{second}/airflow.db\n"
    assert (second / "airflow.cfg").stat().st_mode & 0o777 == 0o600 and (second / "logs").is_dir()
    assert answer.returncode == 0 and answer.stdout == f"migrated {second}\n" and answer.args == MIGRATE


@pytest.mark.parametrize("change", ["config", "args", "home content", "unknown command", "db server"])
def test_anything_that_can_change_the_db_runs_the_real_command(tmp_path, change):
    calls: list[str] = []
    first, second = tmp_path / "one" / "airflow", tmp_path / "two" / "airflow"
    db_template.run(env_for(first, 1), MIGRATE, fake_airflow(first, calls))
    env, argv = env_for(second, 2), list(MIGRATE)
    if change == "config":
        env["AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS"] = "True"
    elif change == "args":
        argv.append("--to-revision=abc")
    elif change == "home content":
        second.mkdir(parents=True)
        (second / "airflow.cfg").write_text("[core]\n")
    elif change == "unknown command":
        argv[1:] = ["dags", "reserialize"]
    if change == "db server":  # the same server DB for both fresh homes: the second migrate must reach it
        server = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://postgres@127.0.0.1:5/clone"}
        env.update(server)
        first = tmp_path / "zero" / "airflow"
        calls.clear()
        db_template.run(env_for(first, 1, **server), MIGRATE, fake_airflow(first, calls))
    db_template.run(env, argv, fake_airflow(second, calls))
    assert calls == [str(first), str(second)]


def test_a_failed_run_or_a_db_naming_its_home_is_not_recorded(tmp_path):
    calls: list[str] = []
    homes = [tmp_path / name / "airflow" for name in ("one", "two", "three")]

    def failing() -> subprocess.CompletedProcess:
        calls.append("failed")
        return subprocess.CompletedProcess(MIGRATE, 1, "", "boom")

    assert db_template.run(env_for(homes[0], 1), MIGRATE, failing).returncode == 1
    db_template.run(env_for(homes[1], 1), MIGRATE, fake_airflow(homes[1], calls, tag=str(homes[1])))
    db_template.run(env_for(homes[2], 1), MIGRATE, fake_airflow(homes[2], calls))
    assert calls == ["failed", str(homes[1]), str(homes[2])]
