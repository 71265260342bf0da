"""Local verification: the repo's own lint, test and build commands, run after the agent, outside it.

This module runs checks: each through :func:`clone.util.runner.run` with a timeout, in the repo's
environment (see :mod:`clone.checks.repo_setup`), streaming into the task log. It also re-exports the
rest of verification's interface: where checks come from (:mod:`clone.checks.sources`), what a check
and its result are (:mod:`clone.checks.model`) and the baseline verdict (:mod:`clone.checks.baseline`).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections import deque
from collections.abc import Mapping
from pathlib import Path

from clone.checks.redact import mask_secrets
from clone.checks.repo_env import RepoEnv, env_root_for
from clone.config import environment
from clone.errors import CommandError
from clone.util import runner, sandbox
# Re-exported: verification's whole interface is importable from here.
from clone.checks.baseline import Verdict, baseline, judge, recheck  # noqa: F401
from clone.checks.model import KINDS, Check, CheckResult, failure_evidence, summarize  # noqa: F401
from clone.checks.sources import checks_from_config, detect_checks  # noqa: F401

__all__ = ["KINDS", "Check", "CheckResult", "Verdict", "baseline", "checks_from_config", "default_env",
           "detect_checks", "failure_evidence", "judge", "recheck", "run_checks", "summarize"]
log = logging.getLogger("clone.checks.verify")

_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|PRIVATE_KEY", re.IGNORECASE)
_MAX_LINE_CHARS = 2000


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
    repo_env = RepoEnv.of(Path(workdir))
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
                                 env_root=env_root_for(workdir))
        result = runner.run(argv, cwd=workdir, env=env, timeout=timeout, check=False,
                            on_line=on_line, max_capture_lines=tail_lines)
    except CommandError as e:  # the program is missing or not executable
        why = f"could not start {check.argv[0]!r} (is it installed and on PATH?): {e.__cause__ or e}"
        log.warning("verify: %s %s", check.name, why)
        return CheckResult(check.name, check.command, None, 0.0, mask_secrets(why, secrets), False,
                           check.source)
    return CheckResult(check.name, check.command, result.returncode, round(result.duration, 1),
                       mask_secrets("\n".join(tail), secrets), result.timed_out, check.source)
