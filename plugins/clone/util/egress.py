"""The agent's only way out in ``CLONE_SANDBOX_AGENT_NETWORK=model``: a forward proxy on a unix socket.

The agent runs in its own network namespace (only its loopback). ``egress_bridge.py``, inside it, pipes each
connection to 127.0.0.1:<port> to the unix socket of :class:`Proxy`, which runs in the task process. The
proxy accepts ``CONNECT host:port`` (https) and absolute-form plain HTTP requests (``POST http://h:p/x``) and
forwards only to an allowlist of ``host:port``: the agent's model API (:func:`allowlist`) plus
``CLONE_SANDBOX_AGENT_EGRESS``. Anything else is answered 403 and logged once per host.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from clone.errors import ConfigError
# The bridge is stdlib-only (it runs inside the sandbox by path); its socket pipes serve the proxy too.
from clone.util.egress_bridge import _pipe
from clone.util.egress_bridge import _splice as splice

log = logging.getLogger("clone.sandbox")

KNOB = "CLONE_SANDBOX_AGENT_EGRESS"
#: Where each CLI goes when nothing points it elsewhere.
DEFAULTS = {"codex": ("api.openai.com:443", "chatgpt.com:443"), "claude": ("api.anthropic.com:443",)}
#: Hosts the bridge also listens on inside the sandbox (for clients that never proxy loopback).
LOOPBACK = ("127.0.0.1", "localhost")
_HEAD_LIMIT = 64 * 1024
_CONNECT_TIMEOUT = 30.0


def host_port(text: str, *, source: str) -> str:
    """``host:port`` (lower-case host) from ``host:port`` or a URL; ConfigError naming ``source``."""
    text = text.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{source}: {text!r} is not an http(s) URL")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as e:
            raise ConfigError(f"{source}: {text!r}: {e}") from None
        host = parts.hostname
    else:
        host, sep, raw = text.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not raw.isdigit() or not 0 < int(raw) < 65536:
            raise ConfigError(f"{source}: {text!r} must be host:port (port 1-65535)")
        port = int(raw)
    return f"{host.lower()}:{port}"


def _codex_config_urls(env: Mapping[str, str]) -> list[str]:
    """The base URL of codex's configured model provider (``CODEX_HOME/config.toml``), if any."""
    home = Path(env["CODEX_HOME"]) if env.get("CODEX_HOME") else Path(env.get("HOME", "/nonexistent")) / ".codex"
    path = home / "config.toml"
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read codex's config to find its model API: {e}") from None
    urls = []
    if isinstance(url := config.get("openai_base_url"), str):
        urls.append(url)
    providers = config.get("model_providers")
    chosen = config.get("model_provider")
    if isinstance(providers, dict) and isinstance(chosen, str) and isinstance(providers.get(chosen), dict):
        if isinstance(url := providers[chosen].get("base_url"), str):
            urls.append(url)
    return urls


def allowlist(agent: str, env: Mapping[str, str], extra: str | None = None) -> list[str]:
    """``host:port`` the agent may reach: its configured endpoint, else its CLI's default, plus the knob."""
    allowed: list[str] = []
    if agent == "codex":
        configured = [*([env["OPENAI_BASE_URL"]] if env.get("OPENAI_BASE_URL") else []),
                      *_codex_config_urls(env)]
        allowed += [host_port(u, source="codex base URL") for u in configured] or list(DEFAULTS["codex"])
    elif agent == "claude":
        url = env.get("ANTHROPIC_BASE_URL", "")
        allowed += [host_port(url, source="ANTHROPIC_BASE_URL")] if url else list(DEFAULTS["claude"])
    raw = os.environ.get(KNOB, "") if extra is None else extra
    allowed += [host_port(item, source=KNOB) for item in raw.split(",") if item.strip()]
    return list(dict.fromkeys(allowed))


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """(head up to and without the blank line, bytes read after it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > _HEAD_LIMIT:
            raise ValueError("request head too long")
        chunk = sock.recv(65536)
        if not chunk:
            raise ValueError("connection closed before the request head ended")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _closing(head: bytes, first: bytes | None = None) -> bytes:
    """``head`` with its first line replaced, hop-by-hop proxy headers dropped and ``Connection: close``."""
    lines = head.split(b"\r\n")
    keep = [line for line in lines[1:] if line.split(b":", 1)[0].strip().lower()
            not in (b"connection", b"proxy-connection", b"keep-alive", b"proxy-authorization")]
    return b"\r\n".join([first or lines[0], *keep, b"Connection: close"]) + b"\r\n\r\n"


class Proxy:
    """The allowlisting forward proxy, on ``<private 0700 dir>/egress.sock``, in daemon threads."""

    def __init__(self, allowed: Iterable[str]) -> None:
        self.allowed = frozenset(allowed)
        self.refused: set[str] = set()
        self.directory = Path(tempfile.mkdtemp(prefix="clone-egress-"))  # mode 0700
        self.socket_path = self.directory / "egress.sock"
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(self.socket_path))
        self._server.listen(64)
        self._closed = False
        threading.Thread(target=self._serve, name="clone-egress", daemon=True).start()
        log.info("sandbox: agent egress proxy on %s allows %s", self.socket_path,
                 ", ".join(sorted(self.allowed)) or "nothing")

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        try:
            self._server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._server.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _serve(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _refuse(self, client: socket.socket, target: str, why: str = "not in the agent's egress allowlist") -> None:
        if target not in self.refused:
            self.refused.add(target)
            log.warning("agent egress refused: %s (%s; %s adds hosts)", target, why, KNOB)
        body = f"Clone's sandbox refused {target}: {why}\n".encode()
        client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                       b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    def _handle(self, client: socket.socket) -> None:
        try:
            self._answer(client)
        finally:
            client.close()

    def _answer(self, client: socket.socket) -> None:
        try:
            client.settimeout(_CONNECT_TIMEOUT)
            head, rest = read_head(client)
            method, target, version = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            if method.upper() == "CONNECT":
                where, path = host_port(target, source="CONNECT"), ""
            else:
                parts = urlsplit(target)
                if parts.scheme != "http":
                    return self._refuse(client, target[:100], "only absolute http:// URLs and CONNECT")
                where = host_port(target, source="request")
                path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        except (ValueError, ConfigError, OSError, UnicodeDecodeError) as e:
            log.warning("agent egress: bad request through the proxy: %s", e)
            return
        try:
            if where not in self.allowed:
                return self._refuse(client, where)
            host, _, port = where.rpartition(":")
            try:
                upstream = socket.create_connection((host, int(port)), timeout=_CONNECT_TIMEOUT)
            except OSError as e:
                log.warning("agent egress: cannot reach %s: %s", where, e)
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                return
            upstream.settimeout(None)
            client.settimeout(None)
            if method.upper() == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    upstream.sendall(rest)
                return splice(client, upstream)
            with upstream:
                first = f"{method} {path} {version}".encode("latin-1")
                upstream.sendall(_closing(head, first) + rest)
                threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()
                answer, body = read_head(upstream)  # mark the answer Connection: close too: no reuse
                client.sendall(_closing(answer) + body)
                _pipe(upstream, client)
        except (OSError, ValueError) as e:
            log.debug("agent egress to %s ended: %s", where, e)
