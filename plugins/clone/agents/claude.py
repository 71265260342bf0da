"""The ``claude`` agent: Claude Code's ``claude -p --output-format stream-json``, read as it streams.

Command line (the prompt goes on stdin: ``-p`` reads it from there when no prompt argument is given)::

    claude -p --output-format stream-json --verbose --no-session-persistence
           --permission-mode acceptEdits --allowedTools Bash --disallowedTools "Bash(git push:*)"
           --settings '{"env": {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}}'
           [--model M] [--max-turns N] [--max-budget-usd X]

``--verbose`` is required by ``stream-json`` in print mode. ``--no-session-persistence`` keeps the
transcripts of a whole fleet from piling up under ``~/.claude/projects``. The ``--settings`` env turns off
auto-update, telemetry and error reporting (fewer moving parts in an unattended run; measured with 2.1.331,
it is what keeps the CLI from contacting anything but its model endpoint).

Permissions, the safe default (measured with Claude Code 2.1.331 in ``-p`` mode, where nobody can answer a
prompt: whatever would ask is denied, reported as a ``permission_denied`` system event and an error
``tool_result``, and the run goes on):

* ``default``: reads only; edits and most shell commands are denied.
* ``acceptEdits`` alone: file edits inside the working directory, read-only commands (``ls``, ``git
  status``), redirections and ``rm``/``touch`` inside the work tree run; anything else (``python``,
  ``make``, ``npm test``, ``git commit``, paths outside the work tree) is denied. So the agent cannot run
  the tests.
* ``acceptEdits`` + ``--allowedTools Bash`` (the default here): edits inside the work tree and any shell
  command, without prompts. Commands run with the worker's user and the agent's allowlisted environment
  (no Airflow or GitHub secrets), unsandboxed: the worker container is the boundary, as with codex's
  ``danger-full-access``. ``git push`` is denied (``--disallowedTools`` wins over ``--allowedTools``):
  the orchestrator pushes.
* ``bypassPermissions`` / ``--dangerously-skip-permissions``: everything, outside the work tree too;
  refused by the CLI when it runs as root (``IS_SANDBOX=1`` did not lift that in 2.1.331), so this module
  refuses it up front for root.

The stream-json events it prints are read by :class:`~clone.agents.claude_events.ClaudeEvents`.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from clone.agents.base import Agent, AgentResult, AgentRun, log
from clone.agents.claude_events import USAGE_KEYS, ClaudeEvents
from clone.agents.events import short
from clone.errors import ConfigError

#: ``--permission-mode`` choices of Claude Code 2.1.331 (``default`` is what it reports with no flag).
PERMISSION_MODES = ("acceptEdits", "auto", "bypassPermissions", "default", "dontAsk", "manual", "plan")
DEFAULT_ALLOWED_TOOLS = ("Bash",)
DEFAULT_DISALLOWED_TOOLS = ("Bash(git push:*)",)
#: Passed with ``--settings``: no auto-update, telemetry, error reporting or other non-model traffic.
QUIET_SETTINGS = {"env": {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}}

__all__ = ["DEFAULT_ALLOWED_TOOLS", "DEFAULT_DISALLOWED_TOOLS", "PERMISSION_MODES", "QUIET_SETTINGS",
           "USAGE_KEYS", "ClaudeAgent", "ClaudeEvents"]


class ClaudeAgent(Agent):
    """Claude Code in print mode, prompt on stdin, stream-json events parsed line by line."""

    name = "claude"

    def __init__(self, *, model: str = "", executable: str = "claude", permission_mode: str = "acceptEdits",
                 allowed_tools: Iterable[str] = DEFAULT_ALLOWED_TOOLS,
                 disallowed_tools: Iterable[str] = DEFAULT_DISALLOWED_TOOLS,
                 max_turns: int | None = None, max_budget_usd: float | None = None,
                 disable_nonessential_traffic: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        if permission_mode not in PERMISSION_MODES:
            raise ConfigError(f"claude permission mode must be one of {', '.join(PERMISSION_MODES)}, "
                              f"got {permission_mode!r}")
        if permission_mode == "bypassPermissions" and hasattr(os, "geteuid") and os.geteuid() == 0:
            raise ConfigError("claude refuses --permission-mode bypassPermissions when running as root; "
                              "run the worker as another user or use acceptEdits with allowed tools")
        self.model = model
        self.executable = executable
        self.permission_mode = permission_mode
        self.allowed_tools = tuple(allowed_tools)
        self.disallowed_tools = tuple(disallowed_tools)
        self.max_turns = max_turns
        self.max_budget_usd = max_budget_usd
        self.disable_nonessential_traffic = disable_nonessential_traffic
        self.events = ClaudeEvents()
        self._recent: deque[str] = deque(maxlen=15)

    def argv(self, run: AgentRun, scratch: Path) -> tuple[list[str], str | None]:
        self.events = ClaudeEvents()
        self._recent.clear()
        argv = [self.executable, "-p", "--output-format", "stream-json", "--verbose",
                "--no-session-persistence", "--permission-mode", self.permission_mode]
        if self.allowed_tools:
            argv += ["--allowedTools", ",".join(self.allowed_tools)]
        if self.disallowed_tools:
            argv += ["--disallowedTools", ",".join(self.disallowed_tools)]
        if self.disable_nonessential_traffic:
            argv += ["--settings", json.dumps(QUIET_SETTINGS, separators=(",", ":"))]
        if self.model:
            argv += ["--model", self.model]
        if self.max_turns:
            argv += ["--max-turns", str(int(self.max_turns))]
        if self.max_budget_usd:
            argv += ["--max-budget-usd", f"{float(self.max_budget_usd):g}"]
        return argv, run.prompt  # always stdin: no argv size limit, no option parsing of the prompt

    def on_line(self, stream: str, line: str) -> bool:
        if stream == "stdout":
            for rendered in self.events.feed(line):
                log.info("[claude] %s", rendered)
                self._recent.append(rendered)
        else:
            log.info("[claude stderr] %s", line)
            self._recent.append(f"stderr: {line}")
        return False

    def tokens_used(self) -> int:
        return self.events.total_tokens

    def finish(self, result: AgentResult, scratch: Path) -> None:
        result.usage = self.events.usage
        result.last_message = self.events.last_message[-4000:]
        if self.events.denials:
            log.warning("agent claude: %d tool call(s) denied by its permission settings (mode %s): %s",
                        len(self.events.denials), self.permission_mode, "; ".join(self.events.denials)[:1000])
        if result.timed_out or getattr(result, "over_budget", False):
            return  # the base class already said why it was stopped
        failures = self.events.failures(exited_ok=result.ok)
        if not failures and result.ok:
            return
        # Said in terms of the parsed events, not the raw tail (stream-json lines run to kilobytes).
        exit_note = "" if result.exit_code == 0 else f"exited with code {result.exit_code}: "
        detail = "; ".join(failures) or "\n".join(short(r, 300) for r in self._recent)
        result.ok = False
        if detail:  # else keep the base class's "exited with code N: <tail>"
            result.error = (exit_note + detail)[-2000:]
