"""CLONE_SANDBOX_AGENT_NETWORK=model: the allowlist, the proxy (real sockets) and a real bwrap run through it."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from clone.errors import ConfigError
from clone.util import egress, sandbox


class _Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802
        body = f"hello {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def origin():
    """A plain HTTP server on loopback: a stand-in model API."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_allowlist_follows_each_cli_and_the_knob(tmp_path):
    assert egress.allowlist("codex", {"HOME": str(tmp_path)}, "") == ["api.openai.com:443", "chatgpt.com:443"]
    assert egress.allowlist("claude", {}, "") == ["api.anthropic.com:443"]
    assert egress.allowlist("claude", {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9/"}, "") == ["127.0.0.1:9"]
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text('model_provider = "p"\n[model_providers.p]\nbase_url = "http://LocalHost:7/v1"\n')
    assert egress.allowlist("codex", {"CODEX_HOME": str(home)}, "proxy.corp:3128, h:1") == [
        "localhost:7", "proxy.corp:3128", "h:1"]
    assert egress.allowlist("command", {}, "") == []
    with pytest.raises(ConfigError, match="CLONE_SANDBOX_AGENT_EGRESS: 'nohost' must be host:port"):
        egress.allowlist("command", {}, "nohost")
    (home / "config.toml").write_text("model_provider = [")
    with pytest.raises(ConfigError, match="config.toml: cannot read codex's config"):
        egress.allowlist("codex", {"CODEX_HOME": str(home)}, "")


def _ask(path, request: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(path))
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        return data


def test_proxy_forwards_only_the_allowlist_and_logs_a_refusal_once(origin, caplog):
    caplog.set_level(logging.WARNING, "clone.sandbox")
    with egress.Proxy([f"127.0.0.1:{origin}"]) as proxy:
        assert oct(proxy.directory.stat().st_mode & 0o777) == "0o700"
        plain = _ask(proxy.socket_path, f"GET http://127.0.0.1:{origin}/v1/x?q=1 HTTP/1.1\r\n"
                                        f"Host: 127.0.0.1:{origin}\r\nProxy-Connection: keep-alive\r\n\r\n".encode())
        assert plain.startswith(b"HTTP/1.1 200") and b"Connection: close" in plain
        assert plain.endswith(b"hello /v1/x?q=1")
        other = f"127.0.0.1:{origin + 1 if origin < 65535 else origin - 1}"
        for _ in range(2):
            assert _ask(proxy.socket_path, f"CONNECT {other} HTTP/1.1\r\n\r\n".encode()).startswith(b"HTTP/1.1 403")
        assert _ask(proxy.socket_path, b"GET https://x:1/ HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 403")
        with socket.socket(socket.AF_UNIX) as s:  # CONNECT: a tunnel, here with HTTP inside
            s.connect(str(proxy.socket_path))
            s.sendall(f"CONNECT 127.0.0.1:{origin} HTTP/1.1\r\n\r\n".encode())
            assert s.recv(100) == b"HTTP/1.1 200 Connection established\r\n\r\n"
            s.sendall(b"GET /t HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert b"hello /t" in b"".join(iter(lambda: s.recv(65536), b""))
    assert not proxy.directory.exists()
    assert caplog.text.count(f"agent egress refused: {other}") == 1


def test_sandboxed_agent_reaches_its_model_api_and_nothing_else(tmp_path, origin, bubblewrap):
    sandbox.probe.cache_clear()
    if sandbox.probe() is not None:
        pytest.fail(f"the sandbox cannot run here: {sandbox.probe()}")
    work = tmp_path / "ws" / "repos" / "w"
    work.mkdir(parents=True)
    with socket.create_server(("127.0.0.1", 0)) as forbidden:
        probe = (
            "import os, socket, sys, urllib.request as r\n"
            f"try:\n    socket.create_connection(('127.0.0.1', {forbidden.getsockname()[1]}), 2); print('DIRECT')\n"
            "except OSError:\n    print('no direct')\n"
            f"print(r.urlopen('http://127.0.0.1:{origin}/via-proxy', timeout=10).read().decode())\n"
            f"try:\n    r.urlopen('http://127.0.0.1:{forbidden.getsockname()[1]}/', timeout=10)\n"
            "except Exception as e:\n    print('refused', e)\n"
            "print('no_proxy' in {k.lower() for k in os.environ})\n"
            "sys.exit(7)\n")
        with egress.Proxy([f"127.0.0.1:{origin}"]) as proxy:
            argv, env = sandbox.wrap([sys.executable, "-c", probe], {"PATH": "/usr/bin:/bin", "NO_PROXY": "*"},
                                     purpose="agent", workdir=work, egress=proxy.socket_path,
                                     direct=[f"127.0.0.1:{origin}"])
            assert "--unshare-net" in argv
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 7, done.stderr
    assert done.stdout.splitlines() == ["no direct", "hello /via-proxy",
                                        "refused HTTP Error 403: Forbidden", "False"], done.stderr


def test_bridge_forwards_sigterm_and_exits_with_the_agents_status(tmp_path):
    ready = tmp_path / "ready"
    bridge = subprocess.Popen([sys.executable, str(sandbox.BRIDGE), "--socket", str(tmp_path / "none"), "--", "sh",
                               "-c", f"trap 'exit 3' TERM; touch {ready}; sleep 30 & wait"])
    for _ in range(100):
        if ready.exists():
            break
        time.sleep(0.05)
    bridge.terminate()
    assert bridge.wait(10) == 3
    killed = subprocess.run([sys.executable, str(sandbox.BRIDGE), "--socket", "x", "--", "sh", "-c", "kill -9 $$"],
                            timeout=10)
    assert killed.returncode == 128 + 9
