"""A throwaway AIRFLOW_HOME for tests that run the real Airflow CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests import db_template

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def airflow_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "PYTHONPATH": str(ROOT / "plugins"),
    })
    env.update(extra or {})
    return env


def airflow(env: dict[str, str], *args: str, timeout: float = 600, template: bool = True
            ) -> subprocess.CompletedProcess:
    """Run the Airflow CLI. ``db migrate`` and ``pools set`` are replayed from this session's template of
    the same command on the same home, configuration and packages (tests/db_template.py) unless
    ``template`` is False: the tests of the migration itself run it for real."""
    argv = [AIRFLOW, *args]

    def real() -> subprocess.CompletedProcess:
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)

    return db_template.run(env, argv, real) if template else real()


def migrate(home: Path) -> dict[str, str]:
    """Migrate a fresh metadata DB under ``home`` and create the agent pool; returns the env."""
    home.mkdir(parents=True, exist_ok=True)
    env = airflow_env(home)
    for args in (("db", "migrate"), ("pools", "set", "clone_agent", "3", "agent processes")):
        result = airflow(env, *args)
        assert result.returncode == 0, f"airflow {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return env
