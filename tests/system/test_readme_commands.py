"""Every `make ...` command README.md shows works as written.

The commands are taken from README's code blocks and from inline code naming one of this Makefile's
targets. The cheap ones run exactly as written (through bash, in the project root) on a migrated
throwaway AIRFLOW_HOME: every `make airflow ARGS=...` and `make help`. The others are listed below
with why they are not run here; a new command with another target fails the classification test.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
RUN = ("airflow", "help")
NOT_RUN = {
    "up": "starts Airflow in the foreground until Ctrl-C",
    "test": "runs the whole suite, this test included",
    "install": "runs anyway, as the prerequisite of every make airflow below",
    "lock": "re-resolves and rewrites the lock files",
    "clean": "deletes .venv and .airflow",
}
# What a parent make (make test) or the developer's shell must not hand to the make we run.
LEAKS = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "ARGS", "CLONE_AIRFLOW_ARGS", "PYTEST_ARGS", "UPGRADE")


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z-]*):[^=\n]*##", text, flags=re.MULTILINE))


def readme_make_commands() -> list[str]:
    """Make command lines in README.md, in order: code-block lines and inline code spans."""
    targets = makefile_targets()
    commands: list[str] = []
    in_block, pending = False, ""
    for line in README.read_text().splitlines():
        if line.lstrip().startswith("```"):
            in_block, pending = not in_block, ""
            continue
        if in_block:
            pending += line.strip()
            if pending.endswith("\\"):
                pending = pending[:-1] + " "
                continue
            if pending.startswith("make "):
                commands.append(pending)
            pending = ""
        else:
            for span in re.findall(r"`(make [^`]+)`", line):
                # `make lint` in the verification table is a repo's rule; a bare `make airflow` names
                # the target in prose (it needs ARGS to be a command).
                if span.split()[1] in targets and span != "make airflow":
                    commands.append(span)
    return commands


def target_of(command: str) -> str:
    words = [w for w in shlex.split(command, comments=True)[1:] if "=" not in w]
    return words[0] if words else "help"  # .DEFAULT_GOAL


def make_args(command: str) -> list[str]:
    """The words ARGS holds, as the airflow target splits them."""
    assigned = [w for w in shlex.split(command, comments=True) if w.startswith("ARGS=")]
    return shlex.split(assigned[0][len("ARGS="):]) if assigned else []


def test_every_readme_make_command_is_classified():
    commands = readme_make_commands()
    assert any(target_of(c) == "airflow" for c in commands) and any("--conf" in c for c in commands), commands
    for command in commands:
        target = target_of(command)
        assert target in makefile_targets(), f"README runs `{command}`: no such Makefile target {target!r}"
        assert target in RUN or target in NOT_RUN, f"README runs `{command}`: classify target {target!r} here"


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> dict[str, str]:
    """The environment of a user's shell, with AIRFLOW_HOME a migrated throwaway that knows clone_fleet."""
    home = tmp_path_factory.mktemp("readme") / "airflow"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "CLONE_")) and k not in LEAKS}
    env["AIRFLOW_HOME"] = str(home)
    for args in ("db migrate", "dags reserialize"):
        result = sh(f'make airflow ARGS="{args}"', env)
        assert result.returncode == 0, f"make airflow ARGS={args!r}:\n{result.stdout[-3000:]}\n" \
                                       f"{result.stderr[-3000:]}"
    return env


def sh(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=180)


def dag_run_confs(env: dict[str, str]) -> dict[str, dict]:
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as db:
        rows = db.execute("SELECT run_id, conf FROM dag_run WHERE dag_id = 'clone_fleet'").fetchall()
    return {run_id: json.loads(conf) if isinstance(conf, str) else conf for run_id, conf in rows}


@pytest.mark.slow
def test_readme_make_commands_work_as_written(airflow_home):
    ran = []
    for command in readme_make_commands():
        if target_of(command) not in RUN:
            continue
        before = dag_run_confs(airflow_home)
        result = sh(command, airflow_home)
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"`{command}` exited {result.returncode}:\n{output[-4000:]}"
        ran.append(command)
        words = make_args(command)
        if target_of(command) == "help":
            assert "make airflow" in result.stdout and "make up" in result.stdout, result.stdout
        elif words[:2] == ["dags", "trigger"] and "--conf" in words:
            created = {k: v for k, v in dag_run_confs(airflow_home).items() if k not in before}
            expected = json.loads(words[words.index("--conf") + 1])
            assert list(created.values()) == [expected], (command, created)
    assert any("dags trigger" in c for c in ran) and any(target_of(c) == "help" for c in ran), ran


@pytest.mark.slow
def test_make_airflow_passes_braces_quotes_spaces_and_dollars_intact(airflow_home):
    model = "a b, {c,d} * $HOME \"q\" it's"
    conf = json.dumps({"model": model})
    args = f"dags trigger clone_fleet --run-id tricky --conf {shlex.quote(conf)}"
    result = subprocess.run(["make", "airflow", f"ARGS={args}"], cwd=ROOT, env=airflow_home,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert dag_run_confs(airflow_home)["tricky"] == {"model": model}
    # ARGS that does not split into shell words is refused with what was given.
    result = sh("make airflow ARGS=\"dags list --output 'json\"", airflow_home)
    assert result.returncode != 0 and "ARGS does not split into shell words: dags list --output 'json" \
        in result.stdout + result.stderr, result.stdout + result.stderr
