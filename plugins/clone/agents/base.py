"""What every agent shares: the run contract, the allowlisted environment, the result."""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clone.checks import repo_setup
from clone.config import environment
from clone.util import egress, runner, sandbox
from clone.errors import AgentError, ConfigError

log = logging.getLogger("clone.agent")

PASS_KINDS = ("pass", "autofix", "bootstrap")
PASS_WORDS = {"pass": "maintenance pass", "autofix": "CI fix", "bootstrap": "bootstrap"}
ENV_ALLOWLIST = environment.AGENT_ALLOWLIST
#: argv strings longer than this go through stdin instead (Linux caps one argument at 128 KiB).
MAX_PROMPT_ARG_BYTES = 100_000


@dataclasses.dataclass(frozen=True)
class AgentRun:
    """One agent invocation: where, what and why."""

    workdir: Path
    prompt: str
    repo_name: str
    pass_kind: str = "pass"

    def __post_init__(self) -> None:
        if self.pass_kind not in PASS_KINDS:
            raise ValueError(f"pass kind must be one of {PASS_KINDS}, got {self.pass_kind!r}")


@dataclasses.dataclass
class AgentResult:
    """What an agent run produced. ``usage`` holds token counts when the agent reports them."""

    agent: str
    ok: bool
    exit_code: int | None
    duration: float
    timed_out: bool = False
    error: str = ""
    last_message: str = ""
    usage: dict[str, int] = dataclasses.field(default_factory=dict)
    over_budget: bool = False

    @property
    def total_tokens(self) -> int:
        return int(self.usage.get("total_tokens", 0))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def validate_passthrough(names: tuple[str, ...]) -> tuple[str, ...]:
    for name in names:
        if environment.is_forbidden(name):
            raise ConfigError(
                f"CLONE_AGENT_ENV_PASSTHROUGH: {name} may not be handed to the agent "
                "(Airflow secrets, Clone's own settings and GitHub tokens never are)"
            )
    return names


def agent_env(run: AgentRun, prompt_file: Path, passthrough: tuple[str, ...],
              base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The agent's whole environment: the allowlist, LC_*, the passthrough names, the contract vars."""
    env = environment.allowlisted((*ENV_ALLOWLIST, *validate_passthrough(passthrough)), base)
    env.update(
        CLONE_PROMPT_FILE=str(prompt_file),
        CLONE_REPO_NAME=run.repo_name,
        CLONE_PASS_KIND=run.pass_kind,
    )
    return env


class Agent:
    """Base class: subclasses say how to build argv and how to read the output."""

    name = "agent"

    def __init__(self, *, timeout_seconds: float, passthrough: tuple[str, ...] = (), max_tokens: int = 0) -> None:
        self.timeout_seconds = timeout_seconds
        self.passthrough = validate_passthrough(passthrough)
        self.max_tokens = max_tokens
        self._over_budget = False

    # Subclass hooks ---------------------------------------------------------------------
    def argv(self, run: AgentRun, scratch: Path) -> tuple[list[str], str | None]:
        """(argv, stdin text or None for /dev/null)."""
        raise NotImplementedError

    def on_line(self, stream: str, line: str) -> bool:
        """Log one output line; return True to stop the agent."""
        log.info("[%s] %s", self.name if stream == "stdout" else f"{self.name} stderr", line)
        return False

    def finish(self, result: AgentResult, scratch: Path) -> None:
        """Read whatever the agent left behind (last message, usage) into ``result``."""

    def tokens_used(self) -> int:
        """Tokens the agent has reported so far in this run (from its streamed events)."""
        return 0

    def _handle_line(self, stream: str, line: str) -> bool:
        stop = bool(self.on_line(stream, line))
        if self.max_tokens and not self._over_budget and self.tokens_used() > self.max_tokens:
            self._over_budget = True
            log.warning("agent %s used %d tokens, over CLONE_MAX_TOKENS_PER_PASS=%d: stopping it",
                        self.name, self.tokens_used(), self.max_tokens)
        return stop or self._over_budget

    # The run ----------------------------------------------------------------------------
    def run(self, run: AgentRun) -> AgentResult:
        """Run the agent in ``run.workdir``; raise AgentError when it fails or times out."""
        self._over_budget = False
        with tempfile.TemporaryDirectory(prefix="clone-agent-") as tmp:
            scratch = Path(tmp)
            prompt_file = scratch / "prompt.md"
            prompt_file.write_text(run.prompt, encoding="utf-8")
            argv, stdin = self.argv(run, scratch)
            env = agent_env(run, prompt_file, self.passthrough)
            proxy = None
            if sandbox.agent_network_mode() == "model" and sandbox.active():
                proxy = egress.Proxy(egress.allowlist(self.name, env))
            try:
                return self._run_in(run, scratch, argv, stdin, env, proxy)
            finally:
                if proxy is not None:
                    proxy.close()

    def _run_in(self, run: AgentRun, scratch: Path, argv: list[str], stdin: str | None, env: dict[str, str],
                proxy: egress.Proxy | None) -> AgentResult:
        """Run the agent (``proxy``: its egress proxy in ``CLONE_SANDBOX_AGENT_NETWORK=model``)."""
        direct = [t for t in (proxy.allowed if proxy else ()) if t.rpartition(":")[0] in egress.LOOPBACK]
        argv, env = sandbox.wrap(argv, env, purpose="agent", workdir=run.workdir, writable=(scratch,),
                                 env_root=repo_setup.env_root_for(run.workdir),
                                 network=sandbox.agent_network(), handed=self.passthrough,
                                 egress=proxy.socket_path if proxy else None, direct=sorted(direct))
        log.info("agent %r (%s) on %s in %s (timeout %.0fs, prompt %d chars)",
                 self.name, PASS_WORDS.get(run.pass_kind, run.pass_kind), run.repo_name, run.workdir,
                 self.timeout_seconds, len(run.prompt))
        try:
            proc = runner.run(argv, cwd=run.workdir, env=env, timeout=self.timeout_seconds,
                              stdin=stdin, on_line=self._handle_line, check=False, max_capture_lines=400)
        except Exception as e:  # cannot even start it
            raise AgentError(f"agent {self.name} could not start: {e}") from e
        result = AgentResult(agent=self.name, ok=proc.ok, exit_code=proc.returncode,
                             duration=round(proc.duration, 1), timed_out=proc.timed_out)
        if self._over_budget:
            result.ok = False
            result.over_budget = True
            result.error = (f"stopped: token budget exceeded ({self.tokens_used()} tokens used, "
                            f"CLONE_MAX_TOKENS_PER_PASS={self.max_tokens})")
        elif proc.handler_error:
            result.error = f"stopped: reading its output failed ({proc.handler_error})"
        elif proc.timed_out:
            result.error = f"timed out after {self.timeout_seconds:.0f}s; its process group was killed"
        elif proc.returncode != 0:
            result.error = f"exited with code {proc.returncode}: {proc.tail(15)}"
        self.finish(result, scratch)
        if result.usage:
            log.info("agent %s token usage: %s", self.name,
                     ", ".join(f"{k}={v}" for k, v in sorted(result.usage.items())))
        if not result.ok:
            error = AgentError(f"agent {self.name} failed on {run.repo_name} ({run.pass_kind}): {result.error}")
            error.result = result
            raise error
        log.info("agent %s finished in %.1fs", self.name, result.duration)
        return result
