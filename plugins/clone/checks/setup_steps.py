"""The setup steps for a repo: repos.yaml ``setup:``, else what the repo's files ask for.

Detection reads the repo's lock and manifest files (uv, Poetry, a plain pyproject/setup.py, npm, Go,
Cargo, pre-commit), else its devcontainer's ``postCreateCommand``, else a Makefile ``init``/``install``/
``deps`` target. :mod:`clone.checks.repo_setup` runs them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shlex
import shutil
import sys
import tomllib
from pathlib import Path
from typing import Any

from clone.checks.declared import NOXFILE, nox_argv, nox_sessions, tox_argv, tox_source
from clone.checks.repo_env import PRE_COMMIT_CONFIG, RepoEnv
from clone.checks.sources import make_targets
from clone.errors import ConfigError

log = logging.getLogger("clone.setup")

_PYTHON_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", "requirements.txt", "tox.ini", "noxfile.py")
_TEST_EXTRAS = ("test", "tests", "testing", "dev")
_MAKE_SETUP_TARGETS = ("init", "install", "deps")
VENV_STEP = "a venv for the repo"


@dataclasses.dataclass(frozen=True)
class Step:
    """One setup command, where it came from."""

    argv: tuple[str, ...]
    source: str

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


def steps_from_config(commands: list[Any], where: str = "repos.yaml setup") -> list[Step]:
    """Steps from repos.yaml ``setup:``: each a command string split like a shell would (never run by one)."""
    steps = []
    for index, command in enumerate(commands):
        label = f"{where}[{index}]"
        if not isinstance(command, str):
            raise ConfigError(f"{label}: expected a command string, got {type(command).__name__}")
        try:
            argv = tuple(shlex.split(command))
        except ValueError as e:
            raise ConfigError(f"{label}: cannot split {command!r} into arguments ({e})") from e
        if not argv:
            raise ConfigError(f"{label}: the command is empty")
        steps.append(Step(argv, label))
    return steps


def _pyproject(workdir: Path) -> dict[str, Any]:
    path = workdir / "pyproject.toml"
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError as e:
        log.warning("setup: ignoring %s: %s", path, e)
        return {}


def _devcontainer_steps(workdir: Path) -> list[Step]:
    path = workdir / ".devcontainer" / "devcontainer.json"
    if not path.is_file():
        return []
    try:
        # devcontainer.json is JSON with comments; drop whole-line // comments, which is what repos use.
        text = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines()
                         if not line.strip().startswith("//"))
        command = json.loads(text).get("postCreateCommand")
    except (ValueError, AttributeError) as e:
        log.warning("setup: ignoring %s: %s", path, e)
        return []
    source = ".devcontainer/devcontainer.json postCreateCommand"
    commands = command.values() if isinstance(command, dict) else [command]
    steps = []
    for item in commands:
        if isinstance(item, str) and item.strip():
            steps.append(Step(("sh", "-c", item), source))
        elif isinstance(item, list) and item and all(isinstance(a, str) for a in item):
            steps.append(Step(tuple(item), source))
    return steps


def _python_steps(workdir: Path, env: RepoEnv, uv: str | None) -> list[Step]:
    venv = str(env.venv)
    if (workdir / "uv.lock").is_file():
        return [Step(("uv", "sync", "--locked"), "uv.lock")]
    project = _pyproject(workdir)
    if (workdir / "poetry.lock").is_file():
        return [_make_venv(venv, uv), Step(("poetry", "install", "--no-interaction"), "poetry.lock")]
    if not ((workdir / "pyproject.toml").is_file() and "project" in project or (workdir / "setup.py").is_file()):
        return [_make_venv(venv, uv)] if any((workdir / m).is_file() for m in _PYTHON_MARKERS) else []
    extras = sorted(set(_TEST_EXTRAS) & set(project.get("project", {}).get("optional-dependencies", {}) or {}))
    target = "." + (f"[{','.join(extras)}]" if extras else "")
    install = ("uv", "pip", "install", "--python", f"{venv}/bin/python") if uv else (f"{venv}/bin/pip", "install")
    steps = [_make_venv(venv, uv), Step((*install, "-e", target), "pyproject.toml/setup.py (editable install)")]
    if _has_pytest_tests(workdir):
        steps.append(Step((*install, "pytest"), "pytest tests found"))
    return steps


def _make_venv(venv: str, uv: str | None) -> Step:
    # --seed: pip in the venv, for setup commands (Makefile, devcontainer) that call pip themselves.
    argv = ("uv", "venv", "--seed", "--allow-existing", venv) if uv else (sys.executable, "-m", "venv", venv)
    return Step(argv, VENV_STEP)


def _has_pytest_tests(workdir: Path) -> bool:
    tests = workdir / "tests"
    return tests.is_dir() and any(tests.rglob("test_*.py"))


def detect_steps(workdir: Path, env: RepoEnv, path: str) -> list[Step]:
    """The setup steps the repo asks for: its ecosystems' installs, else its devcontainer's
    ``postCreateCommand``, else a Makefile ``init``/``install``/``deps`` target; then its nox sessions'
    installs (``nox --install-only``)."""
    workdir = Path(workdir)
    uv = shutil.which("uv", path=path)
    steps = _python_steps(workdir, env, uv)
    ecosystem = any(s.source != VENV_STEP for s in steps)
    if (workdir / "package.json").is_file():
        ecosystem = True
        lock = (workdir / "package-lock.json").is_file()
        steps.append(Step(("npm", "ci") if lock else ("npm", "install"),
                          "package-lock.json" if lock else "package.json (no lock)"))
    if (workdir / "go.mod").is_file():
        ecosystem = True
        steps.append(Step(("go", "mod", "download"), "go.mod"))
    if (workdir / "Cargo.toml").is_file():
        ecosystem = True
        steps.append(Step(("cargo", "fetch"), "Cargo.toml"))
    if (workdir / PRE_COMMIT_CONFIG).is_file():
        steps.append(Step(("pre-commit", "install-hooks"), PRE_COMMIT_CONFIG))
    if not ecosystem:
        declared = _devcontainer_steps(workdir)
        if not declared:
            made = make_targets(workdir)
            targets = made[1] if made else set()
            declared = [Step(("make", t), f"Makefile target {t}") for t in _MAKE_SETUP_TARGETS if t in targets][:1]
        steps += declared
    # Last: the steps before may be what installs tox or nox. The checks then reuse these envs.
    if tox := tox_source(workdir):
        steps.append(Step(tox_argv(env.root, notest=True), f"{tox} (envs created, tests not run)"))
    if sessions := [name for names in nox_sessions(workdir).values() for name in names]:
        steps.append(Step(nox_argv(env.root, sessions, install_only=True), f"{NOXFILE} sessions"))
    return steps


def steps_for(setup: tuple[str, ...] | None, workdir: Path, path: str | None = None) -> list[Step]:
    """repos.yaml ``setup:`` if given (``[]`` = none), else detected."""
    if setup is not None:
        return steps_from_config(list(setup))
    workdir = Path(workdir)
    return detect_steps(workdir, RepoEnv.of(workdir), path or os.environ.get("PATH", ""))

