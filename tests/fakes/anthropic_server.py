"""A scripted, local stand-in for the Anthropic Messages API, good enough for the real ``claude -p``.

Usage::

    with FakeAnthropicServer(
        script=[BashCall("echo hi > hello.txt"), Text("Done: wrote hello.txt")],
        usage=Usage(input_tokens=120, output_tokens=30),
    ) as server:
        env = claude_env(home, server)          # tests/fakes/claude_cli.py
        ... run claude -p --output-format stream-json --verbose ...
        assert server.tool_results()[0].is_error is False

Each ``POST /v1/messages`` that advertises the ``Bash`` tool (an agent turn) consumes the next script step;
when the script is exhausted the server answers ``when_exhausted`` (default: a final ``Text``). Requests
without the ``Bash`` tool (side calls, e.g. a small model titling the session) never consume a step: they
get ``side_reply`` (default a short text) and are kept in ``side_requests``.

What Claude Code 2.1.331 actually does (observed against this server, not guessed):

* With ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`` its only traffic is ``POST
  <ANTHROPIC_BASE_URL>/v1/messages?beta=true`` (checked with ``strace -e connect``: no DNS look-up, no
  other host). Without it, it also sends ``HEAD /api/hello`` to the base URL and resolves
  ``api.anthropic.com`` (telemetry; events then pile up in ``~/.claude/telemetry/``). ``/api/hello`` and
  ``/v1/messages/count_tokens`` and ``GET /v1/models`` are served anyway.
* Headers: ``x-api-key: <ANTHROPIC_API_KEY>``, ``anthropic-version: 2023-06-01``, an ``anthropic-beta`` list,
  ``User-Agent: claude-cli/2.1.331 (external, sdk-cli)``, ``X-Claude-Code-Session-Id``. The body is plain
  JSON (``model``, ``max_tokens``, ``system`` as a list of text blocks, ``messages``, ``tools``,
  ``thinking``, ``metadata``, ``stream: true``); the prompt is the last text block of the first ``user``
  message.
* The shell tool is ``Bash`` with ``input_schema`` properties ``command`` (required), ``timeout`` (ms),
  ``description``, ``run_in_background``, ... Also advertised: ``Agent``, ``Edit``, ``Read``, ``Write``,
  ``Skill``, ``ToolSearch``, ... (a ``tool_use`` naming an unknown tool is answered with an error result).
  Claude Code runs the command with bash in the working directory. The result comes back in the next
  request as a ``user`` message block ``{"type": "tool_result", "tool_use_id", "content", "is_error"}``
  (``content`` is the command's output, ``(Bash completed with no output)`` if none, ``Exit code N\n...``
  for a failure; ``is_error`` true for a non-zero exit or a permission denial). Claude Code may append a
  ``<system-reminder>`` block to it (seen: ``<total_tokens>... tokens left</total_tokens>``):
  ``ToolResult.text`` strips those.
* SSE: ``message_start`` (with ``message.usage``), ``content_block_start``/``content_block_delta``
  (``text_delta`` or ``input_json_delta`` with ``partial_json``)/``content_block_stop``, ``message_delta``
  (``delta.stop_reason`` ``tool_use`` or ``end_turn``, cumulative ``usage``), ``message_stop``, all with an
  ``event:`` line naming the type. ``ping`` events are sent as the real API does.
* The ``result`` line of ``--output-format stream-json`` sums the usage of every response of the run
  (``input_tokens``, ``output_tokens``, ``cache_creation_input_tokens``, ``cache_read_input_tokens``) and
  prices it at the list price of the model it asked for (``total_cost_usd``); ``reported_usage`` lists
  what was sent.
* Errors: an HTTP error is JSON ``{"type": "error", "error": {"type", "message"}}``. 5xx and 529 are
  retried ``CLAUDE_CODE_MAX_RETRIES`` times (default 10, exponential back-off from ~0.5 s; each retry is a
  ``system``/``api_retry`` line in stream-json), so tests set it to 0: then one POST, exit 1 in ~0.5 s.
  Whatever that setting, a 400 is re-sent up to 5 times with altered requests (``thinking.display``
  dropped, deferred tools loaded: 6 POSTs) and a 404 once more without streaming; so a step that should
  fail the run must keep failing (``when_exhausted=HttpError(...)``): one ``HttpError(400)`` step is
  recovered from. A
  ``StreamError`` makes it retry once without streaming (``stream: false``), answered 529 here. A run that
  gives up prints an ``assistant`` line with ``model: "<synthetic>"``, ``is_api_error_message: true`` and
  text ``API Error: <status> <message>``, then a ``result`` with ``is_error: true`` (subtype ``success``,
  ``terminal_reason: "api_error"``, ``api_error_status``), and exits 1.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Union

from tests.fakes.local_server import LocalHandler, LocalServer

__all__ = [
    "BashCall",
    "FakeAnthropicServer",
    "HttpError",
    "StreamError",
    "Text",
    "ToolCall",
    "ToolResult",
    "Usage",
]

SHELL_TOOL = "Bash"

# --------------------------------------------------------------------------------------------- script



@dataclass(frozen=True)
class Usage:
    """Token usage reported for one response (``message_start`` and ``message_delta``)."""

    input_tokens: int = 100
    output_tokens: int = 20
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "output_tokens": self.output_tokens,
        }


@dataclass(frozen=True)
class ToolCall:
    """The model calls tool ``name`` with ``input`` (any tool Claude Code advertises)."""

    name: str
    input: dict[str, Any]
    text: str = ""  # optional text block before the tool_use block
    tool_use_id: str | None = None  # generated ("toolu_0001", ...) when None
    usage: Usage | None = None


@dataclass(frozen=True)
class BashCall:
    """The model asks Claude Code to run ``command`` with its ``Bash`` tool."""

    command: str
    description: str = "Run a scripted command"
    text: str = ""
    tool_use_id: str | None = None
    usage: Usage | None = None

    def as_tool_call(self) -> ToolCall:
        return ToolCall(SHELL_TOOL, {"command": self.command, "description": self.description},
                        self.text, self.tool_use_id, self.usage)


@dataclass(frozen=True)
class Text:
    """A final assistant message (``stop_reason: end_turn``): Claude Code ends the run after it."""

    text: str
    usage: Usage | None = None


@dataclass(frozen=True)
class HttpError:
    """Answer with a plain HTTP error (JSON body in the API's error shape) instead of a stream."""

    status: int = 500
    message: str = "fake anthropic server error"
    error_type: str = "api_error"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamError:
    """Answer 200 + SSE, but the stream carries an ``error`` event after ``message_start``."""

    message: str = "Overloaded"
    error_type: str = "overloaded_error"


Step = Union[ToolCall, BashCall, Text, HttpError, StreamError]


@dataclass(frozen=True)
class ToolResult:
    """A ``tool_result`` block Claude Code sent back (the result of a ``ToolCall``/``BashCall``)."""

    tool_use_id: str
    content: str
    is_error: bool
    raw: dict[str, Any]

    @property
    def text(self) -> str:
        """``content`` without the ``<system-reminder>`` blocks Claude Code sometimes appends to it."""
        return re.sub(r"\s*<system-reminder>.*?</system-reminder>\s*", "\n", self.content, flags=re.S).strip()


# --------------------------------------------------------------------------------------------- server


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return "" if content is None else json.dumps(content)


def _tool_names(body: dict[str, Any]) -> set[str]:
    return {str(t.get("name")) for t in body.get("tools") or [] if isinstance(t, dict)}


class FakeAnthropicServer(LocalServer):
    thread_name = "fake-anthropic-server"
    """Scripted Messages-API server on ``127.0.0.1`` (ThreadingHTTPServer in a daemon thread)."""

    def __init__(
        self,
        script: list[Step] | None = None,
        usage: Usage | None = None,
        when_exhausted: Step | None = None,
        side_reply: Step | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.script: list[Step] = list(script or [])
        self.usage = usage or Usage()
        self.when_exhausted: Step = when_exhausted or Text("Done.")
        self.side_reply: Step = side_reply or Text("Scripted side reply", usage=Usage(10, 2))
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._next_step = 0
        self.requests: list[dict[str, Any]] = []  # JSON bodies of agent-turn POST /v1/messages, in order
        self.request_headers: list[dict[str, str]] = []  # headers of those POSTs
        self.side_requests: list[dict[str, Any]] = []  # bodies of /v1/messages POSTs without the Bash tool
        self.http_log: list[tuple[str, str, int]] = []  # (method, path, status) of every request
        self.answered: list[Step] = []  # the step used for each agent-turn POST
        self.reported_usage: list[Usage] = []  # usage sent in each completed stream (side calls included)

    @property
    def base_url(self) -> str:
        """What ``ANTHROPIC_BASE_URL`` should be (Claude Code appends ``/v1/messages``)."""
        return f"http://127.0.0.1:{self.port}"

    # ---- inspection
    def tool_results(self) -> list[ToolResult]:
        """``tool_result`` blocks Claude Code sent back, de-duplicated by ``tool_use_id``, in order."""
        seen: dict[str, ToolResult] = {}
        with self._lock:
            bodies = list(self.requests)
        for body in bodies:
            for message in body.get("messages") or []:
                if not isinstance(message, dict) or not isinstance(message.get("content"), list):
                    continue
                for block in message["content"]:
                    if not isinstance(block, dict) or block.get("type") != "tool_result":
                        continue
                    tool_use_id = str(block.get("tool_use_id"))
                    if tool_use_id not in seen:
                        seen[tool_use_id] = ToolResult(tool_use_id, _content_text(block.get("content")),
                                                       bool(block.get("is_error")), block)
        return list(seen.values())

    def advertised_tools(self, index: int = 0) -> list[dict[str, Any]]:
        """The ``tools`` list of agent request ``index`` (the first by default)."""
        return list(self.requests[index].get("tools") or [])

    def prompt(self, index: int = 0) -> str:
        """The text of the last text block of the first user message of request ``index``."""
        for message in self.requests[index].get("messages") or []:
            if message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return content
                texts = [b.get("text", "") for b in content or []
                         if isinstance(b, dict) and b.get("type") == "text"]
                return texts[-1] if texts else ""
        return ""

    @property
    def steps_left(self) -> int:
        return max(0, len(self.script) - self._next_step)

    # ---- the model
    def _take_step(self, body: dict[str, Any], headers: dict[str, str]) -> Step:
        with self._lock:
            if SHELL_TOOL not in _tool_names(body):
                self.side_requests.append(body)
                return self.side_reply
            self.requests.append(body)
            self.request_headers.append(headers)
            if self._next_step < len(self.script):
                step = self.script[self._next_step]
                self._next_step += 1
            else:
                step = self.when_exhausted
            self.answered.append(step)
            return step

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):04d}"

    def _blocks(self, step: Step) -> tuple[list[dict[str, Any]], str]:
        """(content blocks, stop_reason) for a streamable step."""
        if isinstance(step, BashCall):
            step = step.as_tool_call()
        if isinstance(step, ToolCall):
            blocks = [{"type": "text", "text": step.text}] if step.text else []
            blocks.append({"type": "tool_use", "id": step.tool_use_id or self._new_id("toolu"),
                           "name": step.name, "input": step.input})
            return blocks, "tool_use"
        if isinstance(step, Text):
            return [{"type": "text", "text": step.text}], "end_turn"
        raise TypeError(f"cannot stream {step!r}")

    def _message(self, step: Step, body: dict[str, Any]) -> tuple[dict[str, Any], Usage]:
        """The complete (non-streamed) message for ``step``."""
        blocks, stop_reason = self._blocks(step)
        usage = getattr(step, "usage", None) or self.usage
        with self._lock:
            self.reported_usage.append(usage)
        return {"id": self._new_id("msg"), "type": "message", "role": "assistant",
                "model": body.get("model") or "claude-fake", "content": blocks,
                "stop_reason": stop_reason, "stop_sequence": None, "usage": usage.as_json()}, usage

    def _stream(self, step: Step, body: dict[str, Any]) -> bytes:
        model = body.get("model") or "claude-fake"
        if isinstance(step, StreamError):
            start = {"id": self._new_id("msg"), "type": "message", "role": "assistant", "model": model,
                     "content": [], "stop_reason": None, "stop_sequence": None,
                     "usage": {"input_tokens": 0, "output_tokens": 0}}
            return b"".join([
                _sse({"type": "message_start", "message": start}),
                _sse({"type": "error", "error": {"type": step.error_type, "message": step.message}}),
            ])
        message, usage = self._message(step, body)
        start_usage = {**usage.as_json(), "output_tokens": 1}
        out = [_sse({"type": "message_start", "message": {
            **message, "content": [], "stop_reason": None, "usage": start_usage}})]
        out.append(_sse({"type": "ping"}))
        for index, block in enumerate(message["content"]):
            if block["type"] == "text":
                out.append(_sse({"type": "content_block_start", "index": index,
                                 "content_block": {"type": "text", "text": ""}}))
                out.append(_sse({"type": "content_block_delta", "index": index,
                                 "delta": {"type": "text_delta", "text": block["text"]}}))
            else:
                out.append(_sse({"type": "content_block_start", "index": index,
                                 "content_block": {**block, "input": {}}}))
                partial = json.dumps(block["input"])
                half = len(partial) // 2  # two deltas, as the real API splits the JSON arbitrarily
                for piece in (partial[:half], partial[half:]):
                    out.append(_sse({"type": "content_block_delta", "index": index,
                                     "delta": {"type": "input_json_delta", "partial_json": piece}}))
            out.append(_sse({"type": "content_block_stop", "index": index}))
        out.append(_sse({"type": "message_delta",
                         "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                         "usage": usage.as_json()}))
        out.append(_sse({"type": "message_stop"}))
        return b"".join(out)


class _Handler(LocalHandler):
    server_version = "FakeAnthropicServer/1"
    fake: FakeAnthropicServer  # set on the per-server subclass

    def _error(self, status: int, error_type: str, message: str, extra: dict[str, str] | None = None) -> None:
        self._json(status, {"type": "error", "error": {"type": error_type, "message": message}}, extra)

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0].rstrip("/")
        if path.endswith("/v1/models"):
            self._json(200, {"data": [{"type": "model", "id": "claude-fake", "display_name": "Fake",
                                       "created_at": "2025-01-01T00:00:00Z"}],
                             "has_more": False, "first_id": "claude-fake", "last_id": "claude-fake"})
        elif path in ("", "/api/hello", "/health"):
            self._json(200, {"status": "ok"})
        else:
            self._error(404, "not_found_error", f"no route for {self.command} {path}")

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            raw = self._read_body()
            body = json.loads(raw or b"{}")
        except Exception as exc:  # noqa: BLE001
            self._error(400, "invalid_request_error", f"bad request body: {exc}")
            return
        if path.endswith("/v1/messages/count_tokens"):
            size = len(json.dumps(body.get("messages") or []))
            self._json(200, {"input_tokens": max(1, size // 4)})
            return
        if not path.endswith("/v1/messages"):
            self._error(404, "not_found_error", f"no route for POST {path}")
            return
        step = self.fake._take_step(body, {k.lower(): v for k, v in self.headers.items()})
        if isinstance(step, HttpError):
            self._error(step.status, step.error_type, step.message, step.headers)
            return
        if body.get("stream"):
            self._send(200, self.fake._stream(step, body), "text/event-stream",
                       {"Cache-Control": "no-cache", "request-id": self.fake._new_id("req")})
        elif isinstance(step, StreamError):
            self._error(529, step.error_type, step.message)
        else:
            self._json(200, self.fake._message(step, body)[0])


FakeAnthropicServer.handler = _Handler
