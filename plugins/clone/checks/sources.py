"""Where a repo's checks come from: repos.yaml ``verify:``, else what the repo declares, else ecosystem defaults.

:func:`detect_checks` takes, per kind (lint, test, build), the first of the repo's declared commands
(:mod:`clone.checks.declared`: AGENTS.md, tox, nox, pre-commit), a Makefile target and a package.json
script; with none of them its CI workflow's ``run:`` steps; with none of those, the ecosystem defaults.
Detection never picks a command that installs, publishes or deploys: installing is the setup phase's job.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import shutil
import sys
import tomllib
from pathlib import Path

from clone.checks.declared import SHELL_TOKENS, agents_md_checks, declared_tool_checks, has_section, table, \
    workflow_checks
from clone.checks.model import KINDS, Check
from clone.checks.repo_env import env_root_for
from clone.errors import ConfigError

log = logging.getLogger("clone.checks.verify")

_MAKEFILES = ("GNUmakefile", "makefile", "Makefile")  # GNU make's own lookup order
_MAKE_TARGETS = {"lint": ("lint",), "test": ("test", "check"), "build": ("build",)}
# A rule line: targets, then ':' or '::' that is not an assignment (':=', '::=').
_RULE = re.compile(r"^(?P<targets>[^\s:=#][^:=#]*?)\s*::?(?![:=])")
_NPM_PLACEHOLDER = re.compile(r"no test specified")
# Keep package managers off the network: these checks verify, they never fetch.
_NPM_ENV = (("npm_config_offline", "true"), ("npm_config_update_notifier", "false"))
_GO_ENV = (("GOPROXY", "off"), ("GOTOOLCHAIN", "local"))
_PY_ENV = (("PYTHONDONTWRITEBYTECODE", "1"),)


def make_targets(workdir: Path) -> tuple[str, set[str]] | None:
    """The Makefile make would read and the targets it defines (recipes and defines ignored)."""
    path = next((workdir / name for name in _MAKEFILES if (workdir / name).is_file()), None)
    if path is None:
        return None
    targets: set[str] = set()
    in_define = False
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stripped = line.strip()
        if in_define:
            in_define = stripped != "endef"
        elif re.match(r"(?:override\s+|export\s+)?define\b", stripped):
            in_define = True
        elif match := _RULE.match(line):
            targets.update(match.group("targets").split())
    return path.name, targets


def _python_checks(workdir: Path) -> dict[str, Check]:
    tool = table(workdir / "pyproject.toml", tomllib.loads, "tool")
    found: dict[str, Check] = {}
    if "ruff" in tool or (workdir / "ruff.toml").is_file() or (workdir / ".ruff.toml").is_file():
        # ruff from the repo's env (a dev dependency setup installed) or the worker's PATH.
        if (env_root_for(workdir) / "venv" / "bin" / "ruff").exists() or shutil.which("ruff"):
            found["lint"] = Check("lint", ("ruff", "check", "."), "ruff config")
        else:
            log.warning("verify: %s has a ruff config but the tool 'ruff' is missing (not in the repo's env nor "
                        "on PATH): no lint check; install ruff where the workers run, or name the lint command "
                        "in verify:", workdir)
    pytest_source = (
        "pyproject.toml [tool.pytest.ini_options]" if isinstance(tool.get("pytest"), dict)
        and "ini_options" in tool["pytest"]
        else "pytest.ini" if (workdir / "pytest.ini").is_file()
        else "tox.ini [pytest]" if has_section(workdir / "tox.ini", "pytest")
        else "setup.cfg [tool:pytest]" if has_section(workdir / "setup.cfg", "tool:pytest")
        else "tests/test_*.py" if (workdir / "tests").is_dir() and any((workdir / "tests").rglob("test_*.py"))
        else None
    )
    if pytest_source:
        # The repo's own environment (setup's venv, first on PATH when checks run), never Clone's Python:
        # a package the worker also has installed would shadow the code under test.
        venv_python = workdir / ".venv" / "bin" / "python"
        python = "python" if (env_root_for(workdir) / "venv" / "bin" / "python").exists() \
            else ".venv/bin/python" if venv_python.exists() else sys.executable
        found["test"] = Check("test", (python, "-m", "pytest", "-q"), pytest_source, _PY_ENV)
    return found


def detect_checks(workdir: Path) -> list[Check]:
    """The repo's checks: its own entry points first, then its CI workflow, then ecosystem defaults.

    Per kind (lint, test, build), the first of AGENTS.md's commands, tox (test), pre-commit (lint), a
    Makefile target and a package.json script; with none of them,
    the ``run:`` steps of its CI workflow (each one check, in order); with none of those, per kind,
    Python (ruff, pytest), Cargo, Go. Kinds with nothing found are left out.
    """
    workdir = Path(workdir)
    candidates: list[dict[str, Check]] = [agents_md_checks(workdir), declared_tool_checks(workdir)]
    if made := make_targets(workdir):
        makefile, targets = made
        candidates.append({kind: Check(kind, ("make", target), f"{makefile} target {target}")
                           for kind, names in _MAKE_TARGETS.items()
                           if (target := next((t for t in names if t in targets), None))})
    scripts = {k: v for k, v in table(workdir / "package.json", json.loads, "scripts").items()
               if isinstance(v, str) and v.strip()}
    candidates.append({
        kind: Check(kind, ("npm", "test") if kind == "test" else ("npm", "run", kind),
                    f"package.json script {kind}", _NPM_ENV)
        for kind in KINDS
        if kind in scripts and not (kind == "test" and _NPM_PLACEHOLDER.search(scripts[kind]))
    })
    if not any(candidates) and (from_ci := workflow_checks(workdir)):
        return from_ci
    candidates.append(_python_checks(workdir))
    if (workdir / "Cargo.toml").is_file():
        candidates.append({kind: Check(kind, ("cargo", kind, "--offline"), "Cargo.toml")
                           for kind in ("test", "build")})
    if (workdir / "go.mod").is_file():
        go = {"lint": "vet", "test": "test", "build": "build"}
        candidates.append({kind: Check(kind, ("go", sub, "./..."), "go.mod", _GO_ENV)
                           for kind, sub in go.items()})
    return [next(found[kind] for found in candidates if kind in found)
            for kind in KINDS if any(kind in found for found in candidates)]


def checks_from_config(commands: list[str]) -> list[Check]:
    """Checks from repos.yaml's ``verify:`` list: each string split like a shell would, never run by one."""
    checks = []
    for index, command in enumerate(commands):
        where = f"repos.yaml verify[{index}]"
        if not isinstance(command, str):
            raise ConfigError(f"{where}: expected a command string, got {type(command).__name__}")
        try:
            argv = tuple(shlex.split(command))
        except ValueError as e:
            raise ConfigError(f"{where}: cannot split {command!r} into arguments ({e}); "
                              "quote it as you would in a shell") from e
        if not argv:
            raise ConfigError(f"{where}: the command is empty")
        if shell := next((t for t in argv if t in SHELL_TOKENS), None):
            raise ConfigError(f"{where}: {command!r} uses shell syntax ({shell}) but verify commands are not "
                              "run through a shell; use one entry per command, or sh -c '...'")
        checks.append(Check(f"verify-{index + 1}", argv, where))
    return checks
