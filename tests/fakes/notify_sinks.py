"""Where the notification tests' messages land: a local SMTP server (aiosmtpd) and a local HTTP endpoint
that answers like a Slack incoming webhook (``ok``), both keeping what they received."""

from __future__ import annotations

import email
import json
import threading
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from tests.fakes.local_server import LocalHandler, LocalServer


class SmtpSink:
    """An SMTP server on 127.0.0.1: ``messages`` are the parsed mails, in order."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._lock = threading.Lock()
        sink = self

        class _Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
                with sink._lock:
                    sink.messages.append(email.message_from_bytes(envelope.content))
                return "250 OK"

        from tests.standalone import free_port

        self.port = free_port()
        self._controller = Controller(_Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    def subjects(self) -> list[str]:
        with self._lock:
            return [str(m["Subject"]) for m in self.messages]

    def bodies(self) -> list[str]:
        with self._lock:
            return [m.get_payload(decode=True).decode() if not m.is_multipart() else
                    "".join(p.get_payload(decode=True).decode() for p in m.walk() if not p.is_multipart())
                    for m in self.messages]


class _WebhookHandler(LocalHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
        body = self._read_body()
        with self.fake.lock:
            self.fake.posts.append({"path": self.path, "json": json.loads(body or b"{}")})
        self._send(200, b"ok", "text/plain")


class WebhookSink(LocalServer):
    """A Slack-style incoming webhook on 127.0.0.1: ``posts`` are the JSON bodies received."""

    handler = _WebhookHandler
    thread_name = "fake-webhook"

    def __init__(self) -> None:
        self._host, self._port = "127.0.0.1", 0
        self.posts: list[dict[str, Any]] = []
        self.http_log: list[tuple[str, str, int]] = []  # LocalHandler._send appends to it
        self.lock = threading.Lock()
        self._lock = threading.Lock()  # LocalServer's own

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/T000/B000/hook"

    def texts(self) -> list[str]:
        with self.lock:
            return [str(p["json"].get("text", "")) for p in self.posts]
