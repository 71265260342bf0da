"""The setup phase: install a repo's own dependencies into its own environment, before the agent runs.

The environment lives under the workspace, beside the clone (``<workspace>/envs/<name>``), never in the
worker's Python: a venv for Python projects, the repo's ``node_modules`` for npm (kept out of git clean
through ``.git/info/exclude``), the user's Go and Cargo caches for ``go mod download``/``cargo fetch``.
Steps come from repos.yaml ``setup:`` or are detected from the repo. Setup has network; it is skipped
when the lock/manifest files and the steps hash as they did at the last successful setup.
A failed setup is an environment failure: recorded as such, never blamed on the agent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shlex
import shutil
import sys
import time
import tomllib
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clone.config import environment
from clone.util import runner
from clone.errors import CommandError, ConfigError

log = logging.getLogger("clone.setup")

#: Files whose content decides what setup installs; their hash is the cache key.
MANIFESTS = (".pre-commit-config.yaml", "uv.lock", "poetry.lock", "pyproject.toml", "setup.py", "setup.cfg", "requirements.txt",
             "requirements-dev.txt", "requirements-test.txt", "package.json", "package-lock.json", "go.mod",
             "go.sum", "Cargo.toml", "Cargo.lock", ".devcontainer/devcontainer.json", "Makefile", "tox.ini")
_PYTHON_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", "requirements.txt", "tox.ini")
_TEST_EXTRAS = ("test", "tests", "testing", "dev")
_MAKE_SETUP_TARGETS = ("init", "install", "deps")
_EXCLUDED = ("node_modules/",)  # setup output kept in the work tree, out of git clean and git add
_STAMP = "setup.json"
PRE_COMMIT_CONFIG = ".pre-commit-config.yaml"


def pre_commit_env(env_root: Path) -> tuple[tuple[str, str], ...]:
    """pre-commit keeps its hook environments in the repo's env, for setup and the lint check alike."""
    return (("PRE_COMMIT_HOME", str(Path(env_root) / "pre-commit")),)


def env_root_for(workdir: Path) -> Path:
    """``<workspace>/envs/<name>`` for the clone ``<workspace>/repos/<name>`` (see clone.work.workspace)."""
    workdir = Path(workdir)
    return workdir.parent.parent / "envs" / workdir.name


@dataclasses.dataclass(frozen=True)
class Step:
    """One setup command, where it came from."""

    argv: tuple[str, ...]
    source: str

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


@dataclasses.dataclass(frozen=True)
class RepoEnv:
    """Where a repo's environment is; :meth:`apply` puts it in front of a command's environment."""

    root: Path
    workdir: Path

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    def path_prefix(self) -> tuple[str, ...]:
        dirs = (self.venv / "bin", self.workdir / "node_modules" / ".bin")
        return tuple(str(d) for d in dirs if d.is_dir())

    def apply(self, env: Mapping[str, str]) -> dict[str, str]:
        """``env`` with the venv's bin and node_modules/.bin first on PATH and the venv active."""
        out = dict(env)
        prefix = self.path_prefix() or (str(self.venv / "bin"),)
        out["PATH"] = os.pathsep.join((*prefix, out.get("PATH", os.defpath)))
        out["VIRTUAL_ENV"] = str(self.venv)
        out["UV_PROJECT_ENVIRONMENT"] = str(self.venv)  # `uv sync`/`uv run` use this venv, not ./.venv
        out.update(pre_commit_env(self.root))
        out.pop("PYTHONHOME", None)
        return out


@dataclasses.dataclass(frozen=True)
class SetupResult:
    """What the setup phase did: ``status`` is done, cached, none (nothing to set up) or failed."""

    status: str
    steps: tuple[str, ...]
    duration: float
    key: str
    failed_step: str | None = None
    output_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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


def _make_targets(workdir: Path) -> set[str]:
    from clone.checks.verify import _make_targets as targets  # the one Makefile reader

    found = targets(workdir)
    return found[1] if found else set()


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
    return Step(argv, "a venv for the repo")


def _has_pytest_tests(workdir: Path) -> bool:
    tests = workdir / "tests"
    return tests.is_dir() and any(tests.rglob("test_*.py"))


def detect_steps(workdir: Path, env: RepoEnv, path: str) -> list[Step]:
    """The setup steps the repo asks for: its ecosystems' installs, else its devcontainer's
    ``postCreateCommand``, else a Makefile ``init``/``install``/``deps`` target."""
    workdir = Path(workdir)
    uv = shutil.which("uv", path=path)
    steps = _python_steps(workdir, env, uv)
    ecosystem = any(s.source != "a venv for the repo" for s in steps)
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
    if ecosystem:
        return steps
    declared = _devcontainer_steps(workdir)
    if not declared:
        targets = _make_targets(workdir)
        declared = [Step(("make", t), f"Makefile target {t}") for t in _MAKE_SETUP_TARGETS if t in targets][:1]
    return steps + declared


def cache_key(workdir: Path, steps: list[Step]) -> str:
    digest = hashlib.sha256()
    for step in steps:
        digest.update(b"step\0" + step.command.encode() + b"\0")
    for name in MANIFESTS:
        path = Path(workdir) / name
        if path.is_file():
            digest.update(b"file\0" + name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _outputs_present(workdir: Path, env: RepoEnv, steps: list[Step]) -> bool:
    """What the cached setup made is still there (the venv, node_modules)."""
    commands = [s.argv for s in steps]
    if any(a[:2] in (("npm", "ci"), ("npm", "install")) for a in commands) \
            and not (workdir / "node_modules").is_dir():
        return False
    wants_venv = any("venv" in " ".join(a) or a[:2] == ("uv", "sync") for a in commands)
    return not wants_venv or (env.venv / "bin" / "python").exists()


def _exclude_outputs(workdir: Path) -> None:
    exclude = workdir / ".git" / "info" / "exclude"
    if not exclude.parent.is_dir():
        return
    text = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
    missing = [p for p in _EXCLUDED if p not in text.splitlines()]
    if missing:
        exclude.write_text(text + ("" if text.endswith("\n") or not text else "\n")
                           + "# clone: setup output\n" + "\n".join(missing) + "\n", encoding="utf-8")


def setup_env(base: Mapping[str, str] | None = None, passthrough: tuple[str, ...] = ()) -> dict[str, str]:
    """Setup's environment: the checks' allowlist (with the package managers' settings), never secrets."""
    env = environment.allowlisted((*environment.CHECK_ALLOWLIST, *passthrough), base, environment.CHECK_PREFIXES)
    env.setdefault("CI", "true")
    return env


def run_setup(workdir: Path, steps: list[Step], *, timeout_seconds: float,
              env: Mapping[str, str] | None = None, tail_lines: int = 40) -> SetupResult:
    """Run ``steps`` in ``workdir`` inside its RepoEnv, unless the same setup already succeeded."""
    workdir = Path(workdir)
    repo_env = RepoEnv(env_root_for(workdir), workdir)
    key = cache_key(workdir, steps)
    commands = tuple(s.command for s in steps)
    if not steps:
        log.info("setup: nothing to set up in %s", workdir)
        return SetupResult("none", (), 0.0, key)
    stamp = repo_env.root / _STAMP
    _exclude_outputs(workdir)
    try:
        previous = json.loads(stamp.read_text(encoding="utf-8")) if stamp.is_file() else {}
    except ValueError:
        previous = {}
    if previous.get("key") == key and _outputs_present(workdir, repo_env, steps):
        log.info("setup: cached (manifests and steps unchanged since %s): %s", previous.get("when"),
                 "; ".join(commands))
        return SetupResult("cached", commands, 0.0, key)
    repo_env.root.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    run_env = repo_env.apply(setup_env() if env is None else env)
    started = time.monotonic()
    for step in steps:
        log.info("setup: `%s` (%s)", step.command, step.source)
        tail: deque[str] = deque(maxlen=tail_lines)

        def on_line(stream: str, line: str) -> None:
            tail.append(line[:2000])
            log.info("[setup] %s", line)

        remaining = timeout_seconds - (time.monotonic() - started)
        try:
            result = runner.run(step.argv, cwd=workdir, env=run_env, timeout=max(remaining, 1.0), check=False,
                                on_line=on_line, max_capture_lines=tail_lines)
            failed = not result.ok
            why = "timed out" if result.timed_out else f"exit {result.returncode}"
        except CommandError as e:
            failed, why = True, f"could not start {step.argv[0]!r} (is it installed and on PATH?)"
            tail.append(str(e))
        if failed:
            duration = round(time.monotonic() - started, 1)
            log.warning("setup: `%s` failed (%s): an environment failure, not the agent's", step.command, why)
            return SetupResult("failed", commands, duration, key, f"{step.command} ({why})", "\n".join(tail))
    duration = round(time.monotonic() - started, 1)
    stamp.write_text(json.dumps({"key": key, "steps": commands,
                                 "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}), encoding="utf-8")
    log.info("setup: done in %.1fs", duration)
    return SetupResult("done", commands, duration, key)


def steps_for(setup: tuple[str, ...] | None, workdir: Path, path: str | None = None) -> list[Step]:
    """repos.yaml ``setup:`` if given (``[]`` = none), else detected."""
    if setup is not None:
        return steps_from_config(list(setup))
    workdir = Path(workdir)
    return detect_steps(workdir, RepoEnv(env_root_for(workdir), workdir), path or os.environ.get("PATH", ""))

