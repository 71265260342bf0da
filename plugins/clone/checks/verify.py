"""Local verification: the repo's own lint, test and build commands, run after the agent, outside it.

Commands come from repos.yaml (``verify: [...]``) or are detected from the work tree (the repo's own
entry points, then its CI workflow's steps, then ecosystem defaults). Each runs through
:func:`clone.util.runner.run` with a timeout, in the repo's environment (see :mod:`clone.checks.repo_setup`),
streaming into the task log. :func:`baseline` runs them on the base commit and :func:`judge` tells the
agent's regressions from what was red before. Detection never picks a command that installs
dependencies, publishes or deploys: installing is the setup phase's job.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import sys
import tomllib
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from clone.config import environment
from clone.checks import repo_setup
from clone.util import runner, sandbox
from clone.errors import CommandError, ConfigError
from clone.checks.redact import mask_secrets

log = logging.getLogger("clone.checks.verify")

KINDS = ("lint", "test", "build")
_MAKEFILES = ("GNUmakefile", "makefile", "Makefile")  # GNU make's own lookup order
_MAKE_TARGETS = {"lint": ("lint",), "test": ("test", "check"), "build": ("build",)}
# A rule line: targets, then ':' or '::' that is not an assignment (':=', '::=').
_RULE = re.compile(r"^(?P<targets>[^\s:=#][^:=#]*?)\s*::?(?![:=])")
_NPM_PLACEHOLDER = re.compile(r"no test specified")
_SHELL_TOKENS = {"&&", "||", "|", ";", ">", ">>", "<", "&"}
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|PRIVATE_KEY", re.IGNORECASE)
# Keep package managers off the network: these checks verify, they never fetch.
_NPM_ENV = (("npm_config_offline", "true"), ("npm_config_update_notifier", "false"))
_GO_ENV = (("GOPROXY", "off"), ("GOTOOLCHAIN", "local"))
_PY_ENV = (("PYTHONDONTWRITEBYTECODE", "1"),)
_MAX_LINE_CHARS = 2000
# A CI step that installs (the setup phase's job, with network) rather than checks.
_INSTALL_STEP = re.compile(r"\b(?:apt-get|apt|brew|choco|pip3?|uv|poetry|npm|yarn|pnpm|cargo|go)\s+(?:-\S+\s+)*"
                           r"(?:mod\s+)?(?:install|ci|sync|add|update|upgrade|fetch|download|get)\b|^\s*sudo\b", re.M)
_ENVIRONMENT_FAILURE = re.compile(r"No module named|ModuleNotFoundError|command not found|: not found$"
                                  r"|Cannot find module|no tests ran|collected 0 items", re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class Check:
    """One command to run: what it checks, its argv, and where it came from."""

    name: str
    argv: tuple[str, ...]
    source: str
    env: tuple[tuple[str, str], ...] = ()  # set on top of the run's environment

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """What one check did. ``exit_code`` is None when the program could not be started."""

    name: str
    command: str
    exit_code: int | None
    duration: float
    output_tail: str
    timed_out: bool
    source: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    @property
    def status(self) -> str:
        return "PASS" if self.ok else "TIMEOUT" if self.timed_out else "FAIL"

    @property
    def failure_kind(self) -> str | None:
        """None when green; ``environment`` when the check could not really run (missing program, exit
        127, a missing module, no tests collected); else ``check``."""
        if self.ok:
            return None
        if self.exit_code in (None, 127) or _ENVIRONMENT_FAILURE.search(self.output_tail) or (
                self.exit_code == 5 and "pytest" in self.command):
            return "environment"
        return "check"

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ok": self.ok, "failure_kind": self.failure_kind}


# -- where checks come from ----------------------------------------------------------------

def _make_targets(workdir: Path) -> tuple[str, set[str]] | None:
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


def _table(path: Path, parse: Callable[[str], Any], key: str) -> dict[str, Any]:
    """The ``key`` table of a JSON or TOML file; empty when the file is missing or malformed."""
    if not path.is_file():
        return {}
    try:
        table = parse(path.read_text(encoding="utf-8")).get(key, {})
    except (ValueError, AttributeError) as e:  # bad JSON/TOML (both ValueErrors), or not an object
        log.warning("verify: ignoring %s: %s", path, e)
        return {}
    return table if isinstance(table, dict) else {}


def _has_section(path: Path, section: str) -> bool:
    return path.is_file() and re.search(rf"^\[{re.escape(section)}\]", path.read_text(
        encoding="utf-8", errors="replace"), re.MULTILINE) is not None


def _python_checks(workdir: Path) -> dict[str, Check]:
    tool = _table(workdir / "pyproject.toml", tomllib.loads, "tool")
    found: dict[str, Check] = {}
    if "ruff" in tool or (workdir / "ruff.toml").is_file() or (workdir / ".ruff.toml").is_file():
        if shutil.which("ruff"):
            found["lint"] = Check("lint", ("ruff", "check", "."), "ruff config")
        else:
            log.info("verify: %s has a ruff config but ruff is not on PATH; no lint check", workdir)
    pytest_source = (
        "pyproject.toml [tool.pytest.ini_options]" if isinstance(tool.get("pytest"), dict)
        and "ini_options" in tool["pytest"]
        else "pytest.ini" if (workdir / "pytest.ini").is_file()
        else "tox.ini [pytest]" if _has_section(workdir / "tox.ini", "pytest")
        else "setup.cfg [tool:pytest]" if _has_section(workdir / "setup.cfg", "tool:pytest")
        else "tests/test_*.py" if (workdir / "tests").is_dir() and any((workdir / "tests").rglob("test_*.py"))
        else None
    )
    if pytest_source:
        # The repo's own environment (setup's venv, first on PATH when checks run), never Clone's Python:
        # a package the worker also has installed would shadow the code under test.
        venv_python = workdir / ".venv" / "bin" / "python"
        python = "python" if (repo_setup.env_root_for(workdir) / "venv" / "bin" / "python").exists() \
            else ".venv/bin/python" if venv_python.exists() else sys.executable
        found["test"] = Check("test", (python, "-m", "pytest", "-q"), pytest_source, _PY_ENV)
    return found


def _triggers(workflow: dict[str, Any]) -> set[str]:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True
    if isinstance(on, str):
        return {on}
    return {str(t) for t in on} if isinstance(on, (list, dict)) else set()


def _workflow_checks(workdir: Path) -> list[Check]:
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
                if not isinstance(script, str) or "${{" in script or _INSTALL_STEP.search(script):
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


def _agents_md_checks(workdir: Path) -> dict[str, Check]:
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
        if kind is None or kind in found or _INSTALL_STEP.search(command):
            continue
        try:
            argv = tuple(shlex.split(command))
        except ValueError:
            continue
        if any(t in _SHELL_TOKENS for t in argv):
            argv = ("sh", "-c", command)
        if argv:
            found[kind] = Check(kind, argv, f"AGENTS.md {match.group('label').strip()}")
    return found


def _declared_tool_checks(workdir: Path) -> dict[str, Check]:
    """tox (its envlist) as the test check and pre-commit (all hooks, all files) as the lint check.

    tox's envs and pre-commit's hook environments live in the repo's env (never the work tree), so
    they survive across passes; pre-commit's hooks are installed by the setup phase.
    """
    found: dict[str, Check] = {}
    env_root = repo_setup.env_root_for(workdir)
    tool = _table(workdir / "pyproject.toml", tomllib.loads, "tool")
    tox_ini = workdir / "tox.ini"
    # Only a tox.ini with test environments: one holding just [pytest] or [flake8] is other tools' config.
    has_tox_ini = tox_ini.is_file() and re.search(
        r"^\[testenv", tox_ini.read_text(encoding="utf-8", errors="replace"), re.MULTILINE) is not None
    if has_tox_ini or "tox" in tool:
        found["test"] = Check("test", ("tox", "run", "--skip-missing-interpreters", "true", "--workdir",
                                       str(env_root / "tox")), "tox.ini" if has_tox_ini
                              else "pyproject.toml [tool.tox]")
    if (workdir / repo_setup.PRE_COMMIT_CONFIG).is_file():
        found["lint"] = Check("lint", ("pre-commit", "run", "--all-files", "--show-diff-on-failure"),
                              repo_setup.PRE_COMMIT_CONFIG, repo_setup.pre_commit_env(env_root))
    return found


def detect_checks(workdir: Path) -> list[Check]:
    """The repo's checks: its own entry points first, then its CI workflow, then ecosystem defaults.

    Per kind (lint, test, build), the first of AGENTS.md's commands, tox (test), pre-commit (lint), a
    Makefile target and a package.json script; with none of them,
    the ``run:`` steps of its CI workflow (each one check, in order); with none of those, per kind,
    Python (ruff, pytest), Cargo, Go. Kinds with nothing found are left out.
    """
    workdir = Path(workdir)
    candidates: list[dict[str, Check]] = [_agents_md_checks(workdir), _declared_tool_checks(workdir)]
    if made := _make_targets(workdir):
        makefile, targets = made
        candidates.append({kind: Check(kind, ("make", target), f"{makefile} target {target}")
                           for kind, names in _MAKE_TARGETS.items()
                           if (target := next((t for t in names if t in targets), None))})
    scripts = {k: v for k, v in _table(workdir / "package.json", json.loads, "scripts").items()
               if isinstance(v, str) and v.strip()}
    candidates.append({
        kind: Check(kind, ("npm", "test") if kind == "test" else ("npm", "run", kind),
                    f"package.json script {kind}", _NPM_ENV)
        for kind in KINDS
        if kind in scripts and not (kind == "test" and _NPM_PLACEHOLDER.search(scripts[kind]))
    })
    if not any(candidates) and (from_ci := _workflow_checks(workdir)):
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
        if shell := next((t for t in argv if t in _SHELL_TOKENS), None):
            raise ConfigError(f"{where}: {command!r} uses shell syntax ({shell}) but verify commands are not "
                              "run through a shell; use one entry per command, or sh -c '...'")
        checks.append(Check(f"verify-{index + 1}", argv, where))
    return checks


# -- running them ----------------------------------------------------------------------------

def default_env(base: Mapping[str, str] | None = None, passthrough: tuple[str, ...] = ()) -> dict[str, str]:
    """The checks' environment: an allowlist (toolchain locations, no model keys, no Airflow or GitHub
    secrets) plus the agent's passthrough names. The checks run code the agent wrote."""
    env = environment.allowlisted((*environment.CHECK_ALLOWLIST, *passthrough), base, environment.CHECK_PREFIXES)
    env.setdefault("CI", "true")  # test runners stay non-interactive (no watch mode, no prompts)
    return env


def run_checks(workdir: Path, checks: list[Check], *, timeout_seconds: float,
               env: Mapping[str, str] | None = None, tail_lines: int = 40,
               network: bool = False) -> list[CheckResult]:
    """Run each check in ``workdir``, at most ``timeout_seconds`` each, in the sandbox (no network unless
    ``network``: repos.yaml ``checks_network: true``); never raises for a failing check."""
    if timeout_seconds <= 0:
        raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
    base = default_env() if env is None else dict(env)
    repo_env = repo_setup.RepoEnv(repo_setup.env_root_for(Path(workdir)), Path(workdir))
    if repo_env.root.is_dir():  # setup made the repo an environment: its tools come first
        base = repo_env.apply(base)
    secrets = tuple(v for k, v in base.items() if _SECRET_NAME.search(k) and len(v) >= 8)
    results = [_run_one(Path(workdir), check, {**base, **dict(check.env)}, timeout_seconds, tail_lines,
                        secrets, network) for check in checks]
    log.info("verify: %d/%d check(s) passed in %s\n%s", sum(r.ok for r in results), len(results), workdir,
             summarize(results))
    return results


def _run_one(workdir: Path, check: Check, env: dict[str, str], timeout: float, tail_lines: int,
             secrets: tuple[str, ...], network: bool = False) -> CheckResult:
    log.info("verify: %s `%s` (%s), timeout %.0fs", check.name, check.command, check.source, timeout)
    tail: deque[str] = deque(maxlen=tail_lines)
    program = check.argv[0]
    if "/" not in program and shutil.which(program, path=env.get("PATH", os.defpath)) is None:
        why = (f"could not start: the declared tool {program!r} is missing (not on the checks' PATH); "
               f"{check.source} needs it")
        log.warning("verify: %s: %s", check.name, why)
        return CheckResult(check.name, check.command, None, 0.0, why, False, check.source)

    def on_line(stream: str, line: str) -> None:
        tail.append(line[:_MAX_LINE_CHARS])
        log.info("[verify %s] %s", check.name, mask_secrets(line, secrets))

    try:
        argv, env = sandbox.wrap(check.argv, env, purpose="check", workdir=workdir, network=network,
                                 env_root=repo_setup.env_root_for(workdir))
        result = runner.run(argv, cwd=workdir, env=env, timeout=timeout, check=False,
                            on_line=on_line, max_capture_lines=tail_lines)
    except CommandError as e:  # the program is missing or not executable
        why = f"could not start {check.argv[0]!r} (is it installed and on PATH?): {e.__cause__ or e}"
        log.warning("verify: %s %s", check.name, why)
        return CheckResult(check.name, check.command, None, 0.0, mask_secrets(why, secrets), False,
                           check.source)
    return CheckResult(check.name, check.command, result.returncode, round(result.duration, 1),
                       mask_secrets("\n".join(tail), secrets), result.timed_out, check.source)


# -- the baseline ----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Verdict:
    """The checks after the agent, judged against the same checks on the untouched base commit."""

    regressions: tuple[CheckResult, ...]  # green at baseline, red now: the agent's, they block
    pre_existing: tuple[CheckResult, ...]  # red at baseline and now: never blamed on the agent
    trusted: int  # how many checks were green at baseline (the ones that can judge the agent)

    @property
    def label(self) -> str:
        if self.regressions:
            return "failed"
        if not self.trusted:
            return "unverified (every check was red before the agent)"
        if self.pre_existing:
            return "passed (pre-existing red: " + ", ".join(r.name for r in self.pre_existing) + ")"
        return "passed"


def judge(baseline: list[CheckResult], after: list[CheckResult]) -> Verdict:
    """Regressions are checks green at baseline and red after; a check with no baseline counts as green."""
    before = {r.command: r for r in baseline}
    regressions, pre_existing = [], []
    for result in after:
        if result.ok:
            continue
        base = before.get(result.command)
        (pre_existing if base is not None and not base.ok else regressions).append(result)
    trusted = sum(1 for r in after if before.get(r.command) is None or before[r.command].ok)
    return Verdict(tuple(regressions), tuple(pre_existing), trusted)


def baseline(workdir: Path, checks: list[Check], sha: str, **run_kwargs: Any) -> list[CheckResult]:
    """The checks on the untouched base commit ``sha`` (the work tree must be at it), cached per sha
    and check list under the repo's environment."""
    key = f"{sha}-" + hashlib.sha256("\0".join(c.command for c in checks).encode()).hexdigest()[:16]
    cache = repo_setup.env_root_for(Path(workdir)) / "baseline" / f"{key}.json"
    if cache.is_file():
        try:
            results = [CheckResult(**{k: v for k, v in item.items() if k not in ("ok", "failure_kind")})
                       for item in json.loads(cache.read_text(encoding="utf-8"))]
            log.info("verify: baseline for %s from cache:\n%s", sha[:12], summarize(results))
            return results
        except (ValueError, TypeError) as e:
            log.warning("verify: ignoring the cached baseline %s: %s", cache, e)
    log.info("verify: baseline: running the checks on the untouched base commit %s", sha[:12])
    results = run_checks(workdir, checks, **run_kwargs)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps([r.to_dict() for r in results]), encoding="utf-8")
    return results


# -- reporting --------------------------------------------------------------------------------

def summarize(results: list[CheckResult]) -> str:
    """One line per check, e.g. ``FAIL test `make test` (1.2s) exit 2``."""
    if not results:
        return "no checks detected"
    return "\n".join(f"{r.status} {r.name} `{r.command}` ({r.duration:.1f}s)" + (
        " could not start" if r.exit_code is None else f" exit {r.exit_code}" if r.status == "FAIL" else ""
    ) + (" (environment)" if r.failure_kind == "environment" else "") for r in results)


def failure_evidence(results: list[CheckResult]) -> str:
    """Markdown for a fix-it prompt: each failing command, how it failed and its output tail."""
    sections = []
    for r in (r for r in results if not r.ok):
        how = ("timed out and was killed" if r.timed_out else "could not start" if r.exit_code is None
               else f"exit code {r.exit_code}")
        # A fence longer than any backtick run in the output, so the output cannot close it.
        fence = "`" * max(3, 1 + max(map(len, re.findall(r"`+", r.output_tail)), default=0))
        sections.append(f"### `{r.command}` ({r.name}, from {r.source}): {how}\n\n"
                        f"{fence}text\n{r.output_tail or '(no output)'}\n{fence}\n")
    return "\n".join(sections)
