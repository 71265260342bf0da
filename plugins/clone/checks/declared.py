"""Checks the repo declares itself: AGENTS.md's commands, tox, nox, pre-commit and its CI workflow's steps.

Read from the base commit before the agent runs, so an agent cannot pick its own judge. Nothing here
runs the repo's code: ``noxfile.py`` is parsed (``ast``), never imported.
"""

from __future__ import annotations

import ast
import logging
import re
import shlex
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clone.checks.model import Check
from clone.checks.repo_env import PRE_COMMIT_CONFIG, env_root_for, pre_commit_env

log = logging.getLogger("clone.checks.verify")

SHELL_TOKENS = {"&&", "||", "|", ";", ">", ">>", "<", "&"}
# A command that installs (the setup phase's job, with network) rather than checks.
INSTALL_STEP = re.compile(r"\b(?:apt-get|apt|brew|choco|pip3?|uv|poetry|npm|yarn|pnpm|cargo|go)\s+(?:-\S+\s+)*"
                          r"(?:mod\s+)?(?:install|ci|sync|add|update|upgrade|fetch|download|get)\b|^\s*sudo\b", re.M)
NOXFILE = "noxfile.py"
# nox sessions by kind, from their names; sessions that rewrite files (format, fix), docs, release are not checks.
_NOX_KINDS = {"lint": re.compile(r"lint|style|flake8|ruff|pylint|mypy|pyright|type.?check|pre.?commit", re.I),
              "test": re.compile(r"test|pytest|unit", re.I), "build": re.compile(r"^build$", re.I)}
_NOX_NEVER = re.compile(r"format|fmt|fix|black|isort|docs|release|publish|deploy|upload", re.I)
_NOX_FLAGS = ("--no-error-on-missing-interpreters",)


def table(path: Path, parse: Callable[[str], Any], key: str) -> dict[str, Any]:
    """The ``key`` table of a JSON or TOML file; empty when the file is missing or malformed."""
    if not path.is_file():
        return {}
    try:
        table = parse(path.read_text(encoding="utf-8")).get(key, {})
    except (ValueError, AttributeError) as e:  # bad JSON/TOML (both ValueErrors), or not an object
        log.warning("verify: ignoring %s: %s", path, e)
        return {}
    return table if isinstance(table, dict) else {}


def has_section(path: Path, section: str) -> bool:
    return path.is_file() and re.search(rf"^\[{re.escape(section)}\]", path.read_text(
        encoding="utf-8", errors="replace"), re.MULTILINE) is not None


def _triggers(workflow: dict[str, Any]) -> set[str]:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True
    if isinstance(on, str):
        return {on}
    return {str(t) for t in on} if isinstance(on, (list, dict)) else set()


def workflow_checks(workdir: Path) -> list[Check]:
    """The ``run:`` steps of the first Linux job, on push or pull_request, of the repo's CI workflows.

    Steps that install (setup's job) or use ``${{ }}`` expressions (which only Actions can fill in) are left
    out; each remaining step is one check, run by bash with ``-e`` as Actions runs it.
    """
    import yaml  # PyYAML (an Airflow dependency); safe_load only

    folder = workdir / ".github" / "workflows"
    for path in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]) if folder.is_dir() else []:
        try:
            workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, OSError) as e:
            log.warning("verify: ignoring %s: %s", path, e)
            continue
        if not isinstance(workflow, dict) or not {"push", "pull_request"} & _triggers(workflow):
            continue
        for job_id, job in (workflow.get("jobs") or {}).items():
            if not isinstance(job, dict) or not re.search(r"ubuntu|linux", str(job.get("runs-on", "")), re.I):
                continue
            checks = []
            for index, step in enumerate(job.get("steps") or []):
                script = step.get("run") if isinstance(step, dict) else None
                if not isinstance(script, str) or "${{" in script or INSTALL_STEP.search(script):
                    continue
                if isinstance(step.get("working-directory"), str):
                    script = f"cd {shlex.quote(step['working-directory'])}\n{script}"
                name = str(step.get("name") or script.strip().splitlines()[0])[:60]
                checks.append(Check(f"ci: {name}", ("bash", "-e", "-c", script),
                                    f".github/workflows/{path.name} job {job_id} step {index + 1}"))
            if checks:
                return checks
    return []


_HEADING = re.compile(r"^(#{2,6})\s+(.*?)\s*#*\s*$")
_COMMANDS_HEADING = re.compile(r"command|build, lint and test|^(?:build|lint|test|testing|development)$", re.I)
_COMMAND_LINE = re.compile(r"^\s*[-*]\s*(?:\*\*)?(?P<label>[A-Za-z ]{2,20}?)(?:\*\*)?\s*:\s*(?:\*\*)?\s*"
                           r"`(?P<command>[^`]+)`")
_KIND_WORDS = {"lint": re.compile(r"lint|style|format|type ?check", re.I), "test": re.compile(r"test", re.I),
               "build": re.compile(r"build|compile", re.I)}


def agents_md_checks(workdir: Path) -> dict[str, Check]:
    """``- Lint: `cmd``` lines under a commands heading of AGENTS.md (the template's "Build, lint and test").

    Read before the agent runs (the pass detects its checks then), so an agent cannot pick its own judge.
    """
    path = workdir / "AGENTS.md"
    if not path.is_file():
        return {}
    found: dict[str, Check] = {}
    level = 0  # the level of the commands heading we are under, 0 when not under one
    fenced = False
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        heading = None if fenced else _HEADING.match(line)
        if heading:
            depth = len(heading.group(1))
            if level and depth <= level:
                level = 0
            if _COMMANDS_HEADING.search(heading.group(2)):
                level = depth
            continue
        match = _COMMAND_LINE.match(line) if level and not fenced else None
        if not match:
            continue
        kind = next((k for k, words in _KIND_WORDS.items() if words.search(match.group("label"))), None)
        command = match.group("command").strip()
        if kind is None or kind in found or INSTALL_STEP.search(command):
            continue
        try:
            argv = tuple(shlex.split(command))
        except ValueError:
            continue
        if any(t in SHELL_TOKENS for t in argv):
            argv = ("sh", "-c", command)
        if argv:
            found[kind] = Check(kind, argv, f"AGENTS.md {match.group('label').strip()}")
    return found


def nox_sessions(workdir: Path) -> dict[str, list[str]]:
    """The ``noxfile.py`` sessions per kind, in file order: functions decorated ``@nox.session`` (or a bare
    ``@session``), named by the decorator's ``name=`` or the function. Parsed with ``ast``, never run."""
    path = Path(workdir) / NOXFILE
    if not path.is_file():
        return {}
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"), filename=str(path))
    except (SyntaxError, ValueError) as e:
        log.warning("verify: ignoring %s: %s", path, e)
        return {}
    found: dict[str, list[str]] = {}
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            target = call.func if call else decorator
            if not (isinstance(target, ast.Attribute) and target.attr == "session"
                    and isinstance(target.value, ast.Name) and target.value.id == "nox"
                    or isinstance(target, ast.Name) and target.id == "session"):
                continue
            name = next((k.value.value for k in (call.keywords if call else ()) if k.arg == "name"
                         and isinstance(k.value, ast.Constant) and isinstance(k.value.value, str)), node.name)
            kind = None if _NOX_NEVER.search(name) else next(
                (k for k, words in _NOX_KINDS.items() if words.search(name)), None)
            if kind:
                found.setdefault(kind, []).append(name)
            break
    return found


def nox_argv(env_root: Path, sessions: list[str], *, install_only: bool = False) -> tuple[str, ...]:
    """``nox`` for ``sessions``, its virtualenvs under the repo's env. Setup installs (``--install-only``,
    with network); the check reuses them and installs nothing (``-R``)."""
    mode = ("--install-only",) if install_only else ("-R",)
    return ("nox", *mode, "--envdir", str(Path(env_root) / "nox"), *_NOX_FLAGS, "-s", *sessions)


def tox_source(workdir: Path) -> str | None:
    """Where the repo declares tox environments, if it does: a tox.ini with ``[testenv...]`` sections (one
    holding just ``[pytest]`` or ``[flake8]`` is other tools' config), or pyproject's ``[tool.tox]``."""
    tox_ini = Path(workdir) / "tox.ini"
    if tox_ini.is_file() and re.search(r"^\[testenv", tox_ini.read_text(encoding="utf-8", errors="replace"),
                                       re.MULTILINE):
        return "tox.ini"
    return "pyproject.toml [tool.tox]" if "tox" in table(Path(workdir) / "pyproject.toml", tomllib.loads,
                                                          "tool") else None


def tox_argv(env_root: Path, *, notest: bool = False) -> tuple[str, ...]:
    """``tox run`` with its envs under the repo's env; setup creates them (``--notest``, with network)."""
    return ("tox", "run", *(("--notest",) if notest else ()), "--skip-missing-interpreters", "true",
            "--workdir", str(Path(env_root) / "tox"))


def declared_tool_checks(workdir: Path) -> dict[str, Check]:
    """tox (its envlist) as the test check, nox sessions by kind, and pre-commit (all hooks, all files)
    as the lint check; per kind the first of them.

    Their environments live in the repo's env (never the work tree), so they survive across passes; the
    setup phase installs nox's sessions and pre-commit's hooks.
    """
    found: dict[str, Check] = {}
    env_root = env_root_for(workdir)
    if source := tox_source(workdir):
        found["test"] = Check("test", tox_argv(env_root), source)
    for kind, sessions in nox_sessions(workdir).items():
        found.setdefault(kind, Check(kind, nox_argv(env_root, sessions), f"{NOXFILE} session(s) "
                                     + ", ".join(sessions)))
    if (workdir / PRE_COMMIT_CONFIG).is_file():
        found.setdefault("lint", Check("lint", ("pre-commit", "run", "--all-files", "--show-diff-on-failure"),
                                       PRE_COMMIT_CONFIG, pre_commit_env(env_root)))
    return found
