"""A real git smart-HTTP server for tests: ``git http-backend`` (CGI) behind Basic auth, on a free loopback port.

Every request must carry ``Authorization: Basic`` with the password :attr:`GitHttpServer.token` (a string, or a
callable giving the valid one or a list of valid ones, such as the installation tokens a fake GitHub issued; the user name
is not checked, as GitHub's ``x-access-token``); others get 401 with ``WWW-Authenticate``, which is what makes
git ask its credential helper. ``on_receive_pack`` is called (with no lock held) while a push's pack upload
is being served, before git http-backend reads it: the push is in flight, its git processes are alive.
"""

from __future__ import annotations

import base64
import subprocess
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

BACKEND = "/usr/lib/git-core/git-http-backend"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self) -> None:
        server: GitHttpServer = self.server.fake  # type: ignore[attr-defined]
        body = self._body() if self.command == "POST" else b""
        user = server.check(self.headers.get("Authorization", ""))
        server.log.append((self.command, self.path, user is not None))
        if user is None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="fake git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        parts = urlsplit(self.path)
        if parts.path.endswith("/git-receive-pack") and server.on_receive_pack is not None:
            server.on_receive_pack()
        env = {"GIT_PROJECT_ROOT": str(server.root), "GIT_HTTP_EXPORT_ALL": "1", "REMOTE_USER": user,
               "REQUEST_METHOD": self.command, "PATH_INFO": parts.path, "QUERY_STRING": parts.query,
               "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
               "REMOTE_ADDR": "127.0.0.1", "PATH": "/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1",
               "HOME": str(server.root)}
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        done = subprocess.run([BACKEND], input=body, env=env, capture_output=True, timeout=120, check=False)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class GitHttpServer:
    """Serves the bare repositories under ``root`` at ``http://127.0.0.1:<port>/<name>.git``."""

    def __init__(self, root: Path, token: str | Callable[[], str | list[str]], on_receive_pack: Callable[[], None] | None = None):
        self.root, self.token, self.on_receive_pack = Path(root), token, on_receive_pack
        self.log: list[tuple[str, str, bool]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.fake = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="fake-git-http")
        self._thread.start()

    def check(self, header: str) -> str | None:
        """The user of a valid Basic authorization, else None."""
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except ValueError:
            return None
        expected = self.token() if callable(self.token) else self.token
        valid = password in expected if isinstance(expected, list | tuple | set) else password == expected
        return user if valid and password else None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> GitHttpServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
