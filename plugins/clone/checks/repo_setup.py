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
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clone.config import environment
from clone.util import runner
from clone.errors import CommandError
# Re-exported: callers import the setup phase's whole interface from here.
from clone.checks.repo_env import PRE_COMMIT_CONFIG, RepoEnv, env_root_for, pre_commit_env  # noqa: F401
from clone.checks.setup_steps import Step, detect_steps, steps_for, steps_from_config  # noqa: F401

__all__ = ["MANIFESTS", "PRE_COMMIT_CONFIG", "RepoEnv", "SetupResult", "Step", "cache_key", "detect_steps",
           "env_root_for", "pre_commit_env", "run_setup", "setup_env", "steps_for", "steps_from_config"]
log = logging.getLogger("clone.setup")

#: Files whose content decides what setup installs; their hash is the cache key.
MANIFESTS = (".pre-commit-config.yaml", "uv.lock", "poetry.lock", "pyproject.toml", "setup.py", "setup.cfg",
             "requirements.txt", "requirements-dev.txt", "requirements-test.txt", "package.json",
             "package-lock.json", "go.mod", "go.sum", "Cargo.toml", "Cargo.lock", ".devcontainer/devcontainer.json",
             "Makefile", "tox.ini", "noxfile.py")
_EXCLUDED = ("node_modules/",)  # setup output kept in the work tree, out of git clean and git add
_STAMP = "setup.json"


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
    repo_env = RepoEnv.of(workdir)
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


