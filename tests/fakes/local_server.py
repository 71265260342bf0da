"""The lifecycle the fake HTTP servers share: a ThreadingHTTPServer on loopback in a daemon thread."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LocalServer:
    """Mixin: ``start``/``stop``/``with`` and ``port`` for a fake whose handler reads ``self.fake``.

    Subclasses set ``handler`` (a BaseHTTPRequestHandler subclass) and ``thread_name``, and
    ``self._host``/``self._port`` in their ``__init__``.
    """

    handler: type[BaseHTTPRequestHandler]
    thread_name = "fake-server"
    _host: str
    _port: int
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def start(self) -> Any:
        if self._httpd is not None:
            return self
        handler = type("_Handler", (self.handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer((self._host, self._port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._httpd.server_address[1]
