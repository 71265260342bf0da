"""The ``command`` agent: any program, given the prompt on stdin.

Contract: cwd = the pass's work tree; the prompt on stdin and in the file named by
``CLONE_PROMPT_FILE``; ``CLONE_REPO_NAME`` and ``CLONE_PASS_KIND`` set; exit 0 = success.
The command line is split with :func:`shlex.split` and never run through a shell.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from clone.agents.base import Agent, AgentRun
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

    def argv(self, run: AgentRun, scratch: Path) -> tuple[list[str], str | None]:
        return list(self.command), run.prompt
