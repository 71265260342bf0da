"""``include/scripts/stall.py`` lists and clears stall state where the tasks keep it: the ``clone.stall.<repo>``
Variables of a real (migrated) Airflow metadata database, plus the files of modules driven outside a task."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.airflow_home import ROOT, airflow, airflow_env, migrate

SCRIPT = ROOT / "include" / "scripts" / "stall.py"
pytestmark = pytest.mark.slow


def stall_script(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True,
                          timeout=180)


def test_list_and_clear_reach_the_variables_the_tasks_write(tmp_path: Path):
    env = migrate(tmp_path / "airflow")
    workspace = tmp_path / "workspace"
    env.update({"CLONE_WORKSPACE": str(workspace), "CLONE_STALL_PASSES": "3"})
    for name, passes in (("eps", 3), ("zeta", 1)):
        value = json.dumps({"no_change_passes": passes, "head": "0123456789abcdef"})
        assert airflow(env, "variables", "set", f"clone.stall.{name}", value).returncode == 0
    (workspace / "state").mkdir(parents=True)
    (workspace / "state" / "local.stall.json").write_text(json.dumps({"no_change_passes": 4, "head": "fedcba"}))

    listed = stall_script(env, "list")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in listed.stdout.splitlines()}
    assert rows["eps"] == ["3 no-change pass(es) at 0123456789ab", "STALLED", "Variable clone.stall.eps"], rows
    assert rows["zeta"][1] == "" and rows["local"][1] == "STALLED" and rows["local"][2].startswith("file "), rows

    cleared = stall_script(env, "clear", "eps", "local")
    assert cleared.returncode == 0, cleared.stderr
    assert "eps: cleared (Variable clone.stall.eps)" in cleared.stdout
    assert airflow(env, "variables", "get", "clone.stall.eps").returncode != 0, "the Variable is gone"
    assert airflow(env, "variables", "get", "clone.stall.zeta").returncode == 0, "the others stay"
    assert not (workspace / "state" / "local.stall.json").exists()

    again = stall_script(env, "clear", "eps")
    assert again.returncode == 1 and "eps: no stall state" in again.stderr


def test_an_unreachable_metadata_database_is_reported_not_ignored(tmp_path: Path):
    home = tmp_path / "never-migrated"
    home.mkdir()
    env = airflow_env(home, {"CLONE_WORKSPACE": str(tmp_path / "workspace")})
    result = stall_script(env, "clear", "eps")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "cannot" in result.stderr and "Variable" in result.stderr, result.stderr
