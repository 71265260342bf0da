"""A scripted, local stand-in for the OpenAI Responses API, good enough for the real ``codex exec``.

Usage::

    with FakeModelServer(
        script=[ShellCall("echo hi > hello.txt"), Message("Done: wrote hello.txt")],
        usage=Usage(input_tokens=120, output_tokens=30),
    ) as server:
        write_codex_home(codex_home, server.base_url)   # tests/fakes/codex_cli.py
        ... run codex exec ...
        assert server.tool_outputs()[0].output ...

Each ``POST /v1/responses`` consumes the next script step and is answered with ``text/event-stream``.
When the script is exhausted the server answers ``when_exhausted`` (default: a final ``Message``).

What codex 0.169.0 actually does (observed against this server, not guessed):

* It POSTs ``<base_url>/responses`` with ``Accept: text/event-stream``, ``Authorization: Bearer <key>``, an
  uncompressed JSON body (``model``, ``stream: true``, ``input``, ``tools``, ``tool_choice: "auto"``,
  ``parallel_tool_calls: true``, ``reasoning: {"summary": "auto"}``, ``store: false``,
  ``include: ["reasoning.encrypted_content"]``, ``prompt_cache_key``, ``client_metadata``) and headers such as
  ``x-codex-turn-metadata``, ``session-id``, ``thread-id``, ``originator: codex_exec``. There is no
  ``instructions`` field: base instructions, skills and AGENTS.md travel as ``developer``/``user`` messages
  in ``input``, the prompt is the last ``user`` message. With a custom provider it made no GET at all (no
  ``/v1/models``); GETs are answered anyway (``/models`` lists the model, anything else 404).
* The shell tool is a function tool ``exec_command`` (required ``cmd``; optional ``workdir``, ``login``,
  ``tty``, ``shell``, ``yield_time_ms``, ``max_output_tokens``, ``sandbox_permissions``, ``justification``,
  ``prefix_rule``). Also advertised: ``write_stdin``, ``request_user_input``, ``view_image``,
  ``multi_agent_v1``, ``get_goal``, ``create_goal``, ``update_goal`` and the hosted ``web_search``.
  ``ShellCall`` uses ``exec_command`` (the older ``shell`` tool shape only if a request advertises ``shell``
  and not ``exec_command``). codex runs it as ``/bin/bash -lc '<cmd>'`` in the ``-C`` directory.
* ``store`` is false, so every request re-sends the whole history, including earlier ``function_call`` items
  and their ``function_call_output`` items whose ``output`` is a string like
  ``"Chunk ID: ..\\nWall time: ..\\nProcess exited with code 0\\nOriginal token count: 1\\nOutput:\\nhi\\n"``
  (``ToolOutput.exit_code`` / ``.text`` parse it).
* SSE (codex-api ``sse/responses.rs``): only the JSON ``data:`` line matters (its ``type``). Needed:
  ``response.created`` with a ``response`` object; ``response.output_item.done`` with the item acted on
  (``message`` with ``output_text`` content, or ``function_call`` with ``call_id``, ``name`` and
  ``arguments`` as a JSON *string*); ``response.completed`` with ``response.id`` and ``response.usage``
  (``input_tokens``, ``input_tokens_details.cached_tokens``, ``output_tokens``,
  ``output_tokens_details.reasoning_tokens``, ``total_tokens``). Those three events alone were enough
  (checked); the others sent here (``response.in_progress``, ``.added``, text/argument deltas) mimic the real
  API. A stream ending without ``response.completed`` is an error; ``response.failed`` with
  ``response.error.{code,message}`` is retryable unless the code is ``context_length_exceeded``,
  ``insufficient_quota`` or ``usage_not_included``.
* ``turn.completed.usage`` in ``--json`` output is the *sum* over the turn's completed responses
  (``input_tokens``, ``cached_input_tokens``, ``output_tokens``, ``reasoning_output_tokens``, plus
  ``cache_write_input_tokens`` = 0); failed attempts count nothing. ``reported_usage`` lists what was sent.
* Errors: HTTP 5xx is retried ``request_max_retries`` times inside ``stream_max_retries + 1`` attempts
  (defaults 4 and 5: 30 POSTs, ~25 s). Each attempt retry is a top-level ``{"type": "error", "message":
  "Reconnecting... n/m (...)"}`` event, and the run can still succeed (exit 0): an ``error`` event alone is
  not a failure, ``turn.failed`` is. When retries are exhausted: ``error`` + ``turn.failed``, exit code 1.
  ``write_codex_home`` sets both retry counts to 0 so failing tests fail at once.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Union

from tests.fakes.local_server import LocalHandler, LocalServer

__all__ = [
    "FakeModelServer",
    "HttpError",
    "Message",
    "ResponseFailed",
    "ShellCall",
    "Step",
    "ToolOutput",
    "Usage",
]


# --------------------------------------------------------------------------------------------- script



@dataclass(frozen=True)
class Usage:
    """Token usage reported in ``response.completed``."""

    input_tokens: int = 100
    output_tokens: int = 20
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def as_json(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class ShellCall:
    """The model asks codex to run ``cmd`` with its shell tool (``exec_command``)."""

    cmd: str
    workdir: str | None = None
    call_id: str | None = None  # generated ("call_1", ...) when None
    usage: Usage | None = None  # per-step override of the server's usage


@dataclass(frozen=True)
class Message:
    """A final assistant message: codex ends the turn after it."""

    text: str
    usage: Usage | None = None


@dataclass(frozen=True)
class HttpError:
    """Answer the request with a plain HTTP error instead of a stream."""

    status: int = 500
    message: str = "fake model server error"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ResponseFailed:
    """Answer 200 + SSE, but the stream reports ``response.failed``."""

    message: str = "fake model failure"
    code: str = "server_error"


Step = Union[ShellCall, Message, HttpError, ResponseFailed]


@dataclass(frozen=True)
class ToolOutput:
    """A ``function_call_output`` item codex sent back (the result of a ``ShellCall``)."""

    call_id: str
    output: str
    raw: dict[str, Any]

    @property
    def exit_code(self) -> int | None:
        """The command's exit code (codex writes ``Process exited with code N``), or None if absent."""
        match = re.search(r"Process exited with code (-?\d+)", self.output)
        return int(match.group(1)) if match else None

    @property
    def text(self) -> str:
        """What the command printed: the text after codex's ``Output:`` header (all of it if absent)."""
        head, sep, tail = self.output.partition("Output:\n")
        return tail if sep else self.output


# --------------------------------------------------------------------------------------------- server


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


class FakeModelServer(LocalServer):
    thread_name = "fake-model-server"
    """Scripted Responses-API server on ``127.0.0.1`` (ThreadingHTTPServer in a daemon thread)."""

    def __init__(
        self,
        script: list[Step] | None = None,
        usage: Usage | None = None,
        when_exhausted: Step | None = None,
        model: str = "fake-model",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.script: list[Step] = list(script or [])
        self.usage = usage or Usage()
        self.when_exhausted: Step = when_exhausted or Message("Done.")
        self.model = model
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._next_step = 0
        self.requests: list[dict[str, Any]] = []  # JSON bodies of POST /v1/responses, in order
        self.request_headers: list[dict[str, str]] = []  # headers of those POSTs
        self.http_log: list[tuple[str, str, int]] = []  # (method, path, status) of every request
        self.answered: list[Step] = []  # the step used for each POST /v1/responses
        self.reported_usage: list[Usage] = []  # usage sent in each response.completed

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # ---- inspection
    def tool_outputs(self) -> list[ToolOutput]:
        """``function_call_output`` items codex sent back, de-duplicated by ``call_id``, in order."""
        seen: dict[str, ToolOutput] = {}
        with self._lock:
            bodies = list(self.requests)
        for body in bodies:
            for item in body.get("input") or []:
                if not isinstance(item, dict) or item.get("type") != "function_call_output":
                    continue
                call_id = str(item.get("call_id"))
                if call_id not in seen:
                    seen[call_id] = ToolOutput(call_id, _output_text(item.get("output")), item)
        return list(seen.values())

    def advertised_tools(self, index: int = 0) -> list[dict[str, Any]]:
        """The ``tools`` list of request ``index`` (the first by default)."""
        return list(self.requests[index].get("tools") or [])

    @property
    def steps_left(self) -> int:
        return max(0, len(self.script) - self._next_step)

    # ---- the model
    def _take_step(self, body: dict[str, Any], headers: dict[str, str]) -> Step:
        with self._lock:
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

    def _stream(self, step: Step, body: dict[str, Any]) -> bytes:
        resp_id = self._new_id("resp")
        created = int(time.time())
        model = body.get("model") or self.model
        base = {"id": resp_id, "object": "response", "created_at": created, "model": model}
        in_progress = {**base, "status": "in_progress", "output": []}
        out = [_sse({"type": "response.created", "response": in_progress})]
        out.append(_sse({"type": "response.in_progress", "response": {**base, "status": "in_progress"}}))

        if isinstance(step, ResponseFailed):
            error = {"code": step.code, "message": step.message}
            out.append(
                _sse({"type": "response.failed", "response": {**base, "status": "failed", "error": error}})
            )
            return b"".join(out)

        if isinstance(step, ShellCall):
            item = self._function_call_item(step, body)
            out.append(_sse({"type": "response.output_item.added", "output_index": 0,
                             "item": {**item, "status": "in_progress", "arguments": ""}}))
            out.append(_sse({"type": "response.function_call_arguments.delta", "output_index": 0,
                             "item_id": item["id"], "delta": item["arguments"]}))
            out.append(_sse({"type": "response.function_call_arguments.done", "output_index": 0,
                             "item_id": item["id"], "arguments": item["arguments"]}))
        elif isinstance(step, Message):
            item = {
                "type": "message",
                "id": self._new_id("msg"),
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": step.text, "annotations": []}],
            }
            part = {"type": "output_text", "text": "", "annotations": []}
            out.append(_sse({"type": "response.output_item.added", "output_index": 0,
                             "item": {**item, "status": "in_progress", "content": []}}))
            out.append(_sse({"type": "response.content_part.added", "output_index": 0, "content_index": 0,
                             "item_id": item["id"], "part": part}))
            out.append(_sse({"type": "response.output_text.delta", "output_index": 0, "content_index": 0,
                             "item_id": item["id"], "delta": step.text}))
            out.append(_sse({"type": "response.output_text.done", "output_index": 0, "content_index": 0,
                             "item_id": item["id"], "text": step.text}))
            out.append(_sse({"type": "response.content_part.done", "output_index": 0, "content_index": 0,
                             "item_id": item["id"], "part": {**part, "text": step.text}}))
        else:  # pragma: no cover - HttpError is answered before streaming
            raise TypeError(f"cannot stream {step!r}")

        out.append(_sse({"type": "response.output_item.done", "output_index": 0, "item": item}))
        usage = step.usage or self.usage
        with self._lock:
            self.reported_usage.append(usage)
        out.append(_sse({"type": "response.completed", "response": {
            **base, "status": "completed", "output": [item], "usage": usage.as_json()}}))
        return b"".join(out)

    def _function_call_item(self, step: ShellCall, body: dict[str, Any]) -> dict[str, Any]:
        names = {t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)}
        if "exec_command" in names or not names & {"shell", "local_shell"}:
            name, args = "exec_command", {"cmd": step.cmd}
            if step.workdir:
                args["workdir"] = step.workdir
        else:  # older codex releases: {"command": [argv...]}
            name, args = "shell", {"command": ["bash", "-lc", step.cmd]}
            if step.workdir:
                args["workdir"] = step.workdir
        return {
            "type": "function_call",
            "id": self._new_id("fc"),
            "call_id": step.call_id or self._new_id("call"),
            "name": name,
            "arguments": json.dumps(args),
            "status": "completed",
        }


def _output_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, dict):  # {"content": ..., "success": ...} in some versions
        return _output_text(output.get("content") if "content" in output else output.get("output"))
    if isinstance(output, list):  # content items
        return "".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in output)
    return "" if output is None else json.dumps(output)


class _Handler(LocalHandler):
    server_version = "FakeModelServer/1"
    fake: FakeModelServer  # set on the per-server subclass

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0].rstrip("/")
        if path.endswith("/models"):
            m = self.fake.model
            self._json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"}], "models": []})
        elif path.endswith("/health") or path in ("", "/v1"):
            self._json(200, {"status": "ok"})
        else:
            self._json(404, {"error": {"message": f"no route for GET {path}", "type": "not_found"}})

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            raw = self._read_body()
        except Exception as exc:  # noqa: BLE001
            error = {"message": f"bad request body: {exc}", "type": "invalid_request_error"}
            self._json(400, {"error": error})
            return
        if not path.endswith("/responses"):
            self._json(404, {"error": {"message": f"no route for POST {path}", "type": "not_found"}})
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            self._json(400, {"error": {"message": f"invalid JSON: {exc}", "type": "invalid_request_error"}})
            return
        step = self.fake._take_step(body, {k.lower(): v for k, v in self.headers.items()})
        if isinstance(step, HttpError):
            self._json(step.status, {"error": {"message": step.message, "type": "server_error",
                                               "code": None}}, step.headers)
            return
        self._send(200, self.fake._stream(step, body), "text/event-stream", {"Cache-Control": "no-cache"})


FakeModelServer.handler = _Handler
