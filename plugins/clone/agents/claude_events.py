"""Claude Code's ``--output-format stream-json`` events, read as they stream: rendered for the log, with
usage, cost, permission denials and failures kept for :class:`~clone.agents.claude.ClaudeAgent`.

stream-json events, one JSON object a line: ``system`` (subtype ``init`` with model, tools,
``permissionMode``; ``api_retry``; ``permission_denied``; ...), ``assistant`` (one event per content block:
``text``, ``tool_use``, ``thinking``; ``is_api_error_message`` marks a synthetic message carrying an API
error), ``user`` (``tool_result`` blocks; a Bash failure's content starts ``Exit code N``), and a final
``result`` with ``subtype`` (``success``, ``error_max_turns``, ``error_max_budget_usd``,
``error_during_execution``, ...), ``is_error``, ``result`` (the final text), ``num_turns``,
``total_cost_usd`` and ``usage`` summed over the run. An API failure gives ``is_error: true`` with subtype
``success`` (and ``terminal_reason: api_error``): ``is_error`` decides, not the subtype alone. 2.1.331
exits 1 on every error result seen; an error result is a failure whatever the exit code, and so is a run
that exits 0 without any ``result`` event.

Usage (``AgentResult.usage``, ints): ``input_tokens``, ``output_tokens``, ``cache_creation_input_tokens``,
``cache_read_input_tokens`` from the ``result`` event, ``total_tokens`` (all four summed: unlike codex's
``input_tokens``, Claude's excludes cached input), and ``cost_usd_micros`` (``total_cost_usd`` in
millionths of a dollar, as Claude Code prices it at list price). Without a ``result`` event (a timeout)
the tokens are summed from the assistant messages seen, which undercounts output.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from clone.agents.events import EventParser, short

USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
_EXIT_CODE = re.compile(r"^Exit code (-?\d+)")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and "text" in b)
    return "" if content is None else json.dumps(content)


def _tool_summary(name: str, tool_input: Any) -> str:
    """A short description of one tool call."""
    if not isinstance(tool_input, dict):
        return short(tool_input, 200)
    if name == "Bash":
        return short(tool_input.get("command", ""))
    for key in ("file_path", "notebook_path", "path", "pattern", "url", "query", "description", "skill"):
        if tool_input.get(key):
            return short(tool_input[key], 300)
    return short(json.dumps(tool_input), 200)


class ClaudeEvents(EventParser[list[str]]):
    """Reads Claude Code's stream-json events: renders each for the log, keeps usage, cost and failures."""

    agent = "claude"

    def __init__(self) -> None:
        self.result_event: dict[str, Any] | None = None
        self.last_text = ""
        self.tools: dict[str, tuple[str, str]] = {}  # tool_use id -> (name, summary)
        self.denials: list[str] = []
        self.api_errors: list[str] = []
        self._message_usage: dict[str, dict[str, int]] = {}  # assistant message id -> its usage

    # ---- what the run amounted to
    @property
    def usage(self) -> dict[str, int]:
        """Token counts (and ``cost_usd_micros``) of the run; empty when nothing was reported."""
        usage: dict[str, int] = {}
        source = (self.result_event or {}).get("usage")
        if isinstance(source, dict):
            for key in USAGE_KEYS:
                if (value := _int(source.get(key))) is not None:
                    usage[key] = value
        else:  # no result event: what the assistant messages said
            for message_usage in self._message_usage.values():
                for key, value in message_usage.items():
                    usage[key] = usage.get(key, 0) + value
        if usage:
            usage["total_tokens"] = sum(usage.get(k, 0) for k in USAGE_KEYS)
        cost = (self.result_event or {}).get("total_cost_usd")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool) and math.isfinite(cost):
            usage["cost_usd_micros"] = int(round(cost * 1_000_000))
        return usage

    @property
    def total_tokens(self) -> int:
        """All tokens so far: input, cache writes, cache reads and output (what ``total_tokens`` reports)."""
        return self.usage.get("total_tokens", 0)

    @property
    def last_message(self) -> str:
        result = (self.result_event or {}).get("result")
        return result if isinstance(result, str) and result else self.last_text

    def failures(self, exited_ok: bool) -> list[str]:
        """Why the run failed, by the events (empty if they say it did not)."""
        event = self.result_event
        if event is None:
            if not exited_ok:
                return self.api_errors[-1:]
            return ["claude exited without a result event", *self.api_errors[-1:]]
        subtype = str(event.get("subtype") or "")
        if not (event.get("is_error") or subtype.startswith("error")):
            return []
        details = [f"{k}={event[k]}" for k in ("terminal_reason", "api_error_status") if event.get(k)]
        errors = event.get("errors") or []
        if isinstance(errors, list) and errors:
            text = "; ".join(str(e) for e in errors)
        else:
            text = event.get("result")
        message = f"claude result {subtype or '?'}" + (f" ({', '.join(details)})" if details else "")
        return [f"{message}: {short(text or 'is_error', 1000)}"]

    # ---- one line
    def _plain(self, text: str) -> list[str]:
        return [text] if text.strip() else []

    def _event(self, kind: str, event: dict[str, Any]) -> list[str]:
        if kind == "system":
            return [self._system(event)]
        if kind == "assistant":
            return self._assistant(event)
        if kind == "user":
            return self._user(event)
        if kind == "result":
            self.result_event = event
            return [self._result(event)]
        if kind == "stream_event":  # partial messages (only with --include-partial-messages): too chatty
            return []
        return [kind]

    def _system(self, event: dict[str, Any]) -> str:
        subtype = event.get("subtype", "?")
        if subtype == "init":
            return (f"session started: claude {event.get('claude_code_version', '?')}, model "
                    f"{event.get('model', '?')}, permission mode {event.get('permissionMode', '?')}, "
                    f"{len(tools) if isinstance(tools := event.get('tools'), list) else '?'} tools, cwd {event.get('cwd', '?')}")
        if subtype == "api_retry":
            return (f"API retry {event.get('attempt')}/{event.get('max_retries')} after "
                    f"{event.get('error_status') or ''} {event.get('error') or ''}, waiting "
                    f"{event.get('retry_delay_ms')} ms")
        if subtype == "permission_denied":
            denial = f"{event.get('tool_name', '?')}: {short(event.get('message', ''), 300)}"
            self.denials.append(denial)
            return f"permission DENIED for {denial}"
        return f"system {subtype}"

    def _assistant(self, event: dict[str, Any]) -> list[str]:
        message = event.get("message")
        message = message if isinstance(message, dict) else {}
        prefix = "[subagent] " if event.get("parent_tool_use_id") else ""
        usage = message.get("usage")
        if isinstance(usage, dict) and message.get("id") and not event.get("is_api_error_message"):
            self._message_usage[str(message["id"])] = {
                k: v for k in USAGE_KEYS if (v := _int(usage.get(k))) is not None}
        lines = []
        content = message.get("content")
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict):
                continue
            block_type = block.get("type")
            if block_type == "text":
                text = str(block.get("text", ""))
                if event.get("is_api_error_message") or event.get("error"):
                    self.api_errors.append(text)
                    lines.append(f"{prefix}API ERROR: {short(text)}")
                    continue
                if not prefix:
                    self.last_text = text
                lines.append(f"{prefix}message: {short(text, 2000)}")
            elif block_type == "tool_use":
                name = str(block.get("name", "?"))
                summary = _tool_summary(name, block.get("input"))
                self.tools[str(block.get("id"))] = (name, summary)
                lines.append(f"{prefix}tool {name}: {summary}")
            elif block_type == "thinking":
                lines.append(f"{prefix}thinking: {short(block.get('thinking', ''), 300)}")
            elif block_type != "redacted_thinking":
                lines.append(f"{prefix}assistant {block_type}")
        return lines

    def _user(self, event: dict[str, Any]) -> list[str]:
        prefix = "[subagent] " if event.get("parent_tool_use_id") else ""
        message = event.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        lines = []
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict) or block.get("type") != "tool_result":
                continue
            name, summary = self.tools.get(str(block.get("tool_use_id")), ("?", ""))
            text = _text_of(block.get("content")).strip()
            if block.get("is_error"):
                match = _EXIT_CODE.match(text)
                first_line = text.splitlines()[0] if text else ""
                status = f"exit {match.group(1)}" if match else f"ERROR: {short(first_line, 300)}"
            elif name == "Bash":
                extra = event.get("tool_use_result")
                status = "interrupted" if isinstance(extra, dict) and extra.get("interrupted") else "exit 0"
            else:
                status = "ok"
            lines.append(f"{prefix}tool {name} -> {status}" + (f" ({summary})" if name == "Bash" else ""))
        return lines

    def _result(self, event: dict[str, Any]) -> str:
        usage = event.get("usage") if isinstance(event.get("usage"), dict) else {}
        cost = event.get("total_cost_usd")
        parts = [f"result {event.get('subtype', '?')}" + (" (ERROR)" if event.get("is_error") else "")]
        if event.get("num_turns") is not None:
            parts.append(f"{short(event['num_turns'], 20)} turns")
        if isinstance(event.get("duration_ms"), (int, float)) and not isinstance(event["duration_ms"], bool):
            parts.append(f"{event['duration_ms'] / 1000:.1f}s")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool) and math.isfinite(cost):
            parts.append(f"cost ${cost:.4f}")
        tokens = ", ".join(f"{k}={usage[k]}" for k in USAGE_KEYS if k in usage)
        line = ", ".join(parts) + (f"; {tokens}" if tokens else "")
        if event.get("is_error") or event.get("errors"):
            line += f": {short(event.get('errors') or event.get('result') or '', 600)}"
        return line
