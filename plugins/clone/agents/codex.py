"""The ``codex`` agent: ``codex exec --json``, with its JSONL events read as they stream.

``turn.failed`` means failure even when codex exits 0. So does an ``error`` event, unless a
later ``turn.completed`` shows codex recovered from it (it reports transient
"Reconnecting..." errors that way). Token usage comes from ``turn.completed`` events and is
summed over the pass.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clone.agents.base import MAX_PROMPT_ARG_BYTES, Agent, AgentResult, AgentRun, log
from clone.agents.events import EventParser, short

SANDBOX_FLAGS = {
    "read-only": ["--sandbox", "read-only"],
    "workspace-write": ["--sandbox", "workspace-write"],
    "danger-full-access": ["--sandbox", "danger-full-access"],
    "bypass": ["--dangerously-bypass-approvals-and-sandbox"],
}
USAGE_KEYS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens")


def _message(error: Any) -> str:
    """The text of an ``error`` field, whatever shape it came in (a dict with ``message``, a string)."""
    if isinstance(error, dict):
        error = error.get("message")
    return "" if error is None or error == "" else str(error)


class CodexEvents(EventParser[str]):
    """Reads codex's JSONL event stream: renders each event for the log, keeps usage and failures."""

    agent = "codex"

    def __init__(self) -> None:
        self.usage: dict[str, int] = {}
        self.turn_failures: list[str] = []
        self.pending_errors: list[str] = []
        self.last_message = ""

    @property
    def failures(self) -> list[str]:
        """Failed turns, and errors no completed turn recovered from."""
        return self.turn_failures + self.pending_errors

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens so far (cached input is part of input)."""
        return self.usage.get("input_tokens", 0) + self.usage.get("output_tokens", 0)

    def usage_report(self) -> dict[str, int]:
        return {**self.usage, "total_tokens": self.total_tokens} if self.usage else {}

    def apply(self, result: AgentResult) -> None:
        """Put usage, the last message and any failure the events reported into ``result``."""
        result.usage = self.usage_report()
        result.last_message = self.last_message[-4000:]
        if self.failures:
            result.error = "; ".join(filter(None, [result.error, *self.failures]))[-2000:]
            result.ok = False

    def _plain(self, text: str) -> str:
        return text

    def _event(self, kind: str, event: dict[str, Any]) -> str:
        if kind == "turn.completed":
            self.pending_errors.clear()
            usage = event.get("usage")
            usage = usage if isinstance(usage, dict) else {}
            for key in USAGE_KEYS:
                value = usage.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    self.usage[key] = self.usage.get(key, 0) + value
            return "turn completed: " + ", ".join(f"{k}={usage.get(k)}" for k in USAGE_KEYS if k in usage)
        if kind == "turn.failed":
            message = _message(event.get("error")) or json.dumps(event)[:400]
            self.turn_failures.append(f"turn failed: {message}")
            return f"turn FAILED: {short(message)}"
        if kind == "error":
            message = _message(event.get("message")) or _message(event.get("error")) or json.dumps(event)[:400]
            self.pending_errors.append(f"error: {message}")
            return f"ERROR: {short(message)}"
        if kind.startswith("item."):
            item = event.get("item")
            return self._item(kind, item if isinstance(item, dict) else {})
        return kind

    def _item(self, kind: str, item: dict[str, Any]) -> str:
        item_type = item.get("type", "?")
        if item_type == "agent_message":
            if kind == "item.completed":
                self.last_message = str(item.get("text", ""))
            return f"message: {short(item.get('text', ''), 2000)}"
        if item_type == "command_execution":
            status = f" -> exit {short(item['exit_code'], 20)}" if item.get("exit_code") is not None else ""
            return f"{kind.split('.')[1]} command: {short(item.get('command', ''))}{status}"
        if item_type == "file_change":
            changes = item.get("changes")
            changes = ", ".join(f"{c.get('kind', '?')} {c.get('path', '?')}"
                                for c in (changes if isinstance(changes, list) else []) if isinstance(c, dict))
            return f"file change: {short(changes)}"
        if item_type == "reasoning":
            return f"reasoning: {short(item.get('text', ''), 300)}"
        if item_type == "error":
            return f"item error: {short(item.get('message', ''))}"
        return f"{kind} {item_type}"


class CodexAgent(Agent):
    name = "codex"

    def __init__(self, *, model: str = "", sandbox: str = "workspace-write", executable: str = "codex",
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.sandbox = sandbox
        self.executable = executable
        self.events = CodexEvents()

    def argv(self, run: AgentRun, scratch: Path) -> tuple[list[str], str | None]:
        self.events = CodexEvents()
        argv = [self.executable, "exec", "--json", "--output-last-message", str(scratch / "last_message.txt"),
                "--cd", str(run.workdir), "--skip-git-repo-check", *SANDBOX_FLAGS[self.sandbox]]
        if self.model:
            argv += ["--model", self.model]
        if len(run.prompt.encode()) > MAX_PROMPT_ARG_BYTES:
            return argv + ["-"], run.prompt
        return argv + ["--", run.prompt], None

    def on_line(self, stream: str, line: str) -> bool:
        if stream == "stdout":
            log.info("[codex] %s", self.events.feed(line))
        else:
            log.info("[codex stderr] %s", line)
        return False

    def tokens_used(self) -> int:
        return self.events.total_tokens

    def finish(self, result: AgentResult, scratch: Path) -> None:
        last = scratch / "last_message.txt"
        if last.exists():
            self.events.last_message = last.read_text(encoding="utf-8", errors="replace")
        self.events.apply(result)
