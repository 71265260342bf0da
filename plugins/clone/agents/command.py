"""The ``command`` agent: any program, given the prompt on stdin.

Contract: cwd = the pass's work tree; the prompt on stdin and in the file named by
``CLONE_PROMPT_FILE``; ``CLONE_REPO_NAME`` and ``CLONE_PASS_KIND`` set; exit 0 = success.
The command line is split with :func:`shlex.split` and never run through a shell.

A command that prints codex-style JSON events on stdout (``{"type": "turn.completed",
"usage": {"input_tokens": ..., "output_tokens": ...}}``) gets its token usage counted, logged
and held to CLONE_MAX_TOKENS_PER_PASS like codex; other output is logged as it is.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from clone.agents.base import Agent, AgentResult, AgentRun, log
from clone.agents.codex import CodexEvents
from clone.errors import ConfigError


class CommandAgent(Agent):
    name = "command"

    def __init__(self, command: str, **kwargs) -> None:
        super().__init__(**kwargs)
        try:
            self.command = shlex.split(command)
        except ValueError as e:
            raise ConfigError(f"CLONE_AGENT_COMMAND={command!r} does not parse: {e}") from e
        if not self.command:
            raise ConfigError("CLONE_AGENT_COMMAND is empty")
        self.events = CodexEvents()

    def argv(self, run: AgentRun, scratch: Path) -> tuple[list[str], str | None]:
        self.events = CodexEvents()
        return list(self.command), run.prompt

    def on_line(self, stream: str, line: str) -> bool:
        if stream == "stdout" and line.startswith("{"):
            log.info("[command] %s", self.events.feed(line))
        else:
            log.info("[command%s] %s", "" if stream == "stdout" else " stderr", line)
        return False

    def tokens_used(self) -> int:
        return self.events.total_tokens

    def finish(self, result: AgentResult, scratch: Path) -> None:
        self.events.apply(result)
