"""Run inside the agent's sandbox (``CLONE_SANDBOX_AGENT_NETWORK=model``) with Clone's own Python.

    python egress_bridge.py --socket /path/egress.sock [--direct host:port ...] -- agent argv...

It listens on 127.0.0.1:<free port> in the sandbox's private network namespace and pipes each connection to
the unix socket of Clone's egress proxy (``clone/util/egress.py``, outside the sandbox), then starts the agent
as its child with ``HTTPS_PROXY``/``HTTP_PROXY`` (and lower-case) pointing there and ``NO_PROXY`` removed.
Each ``--direct`` loopback ``host:port`` (a local model server) is also listened on at that address, and
its connections are tunnelled with ``CONNECT``, for clients that never proxy loopback. SIGTERM/SIGINT go
to the agent; the bridge exits with the agent's status. Standard library only: Clone is not importable here.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import os


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _splice(a: socket.socket, b: socket.socket) -> None:
    other = threading.Thread(target=_pipe, args=(b, a), daemon=True)
    other.start()
    _pipe(a, b)
    other.join()
    a.close()
    b.close()


def _serve(listener: socket.socket, path: str, tunnel: str | None) -> None:
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_connect, args=(client, path, tunnel), daemon=True).start()


def _connect(client: socket.socket, path: str, tunnel: str | None) -> None:
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(path)
        if tunnel:
            upstream.sendall(f"CONNECT {tunnel} HTTP/1.1\r\nHost: {tunnel}\r\n\r\n".encode())
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = upstream.recv(4096)
                if not chunk:
                    raise OSError("the egress proxy closed the tunnel")
                answer += chunk
            head, _, rest = answer.partition(b"\r\n\r\n")
            if b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
                raise OSError(head.split(b"\r\n", 1)[0].decode("latin-1"))
            if rest:
                client.sendall(rest)
    except OSError as e:
        print(f"clone egress bridge: {tunnel or 'proxy'}: {e}", file=sys.stderr, flush=True)
        client.close()
        upstream.close()
        return
    _splice(client, upstream)


def _listen(host: str, port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(64)
    return listener


def main(args: list[str]) -> int:
    if "--" not in args:
        print("usage: egress_bridge.py --socket PATH [--direct host:port ...] -- argv...", file=sys.stderr)
        return 2
    split = args.index("--")
    options, argv = args[:split], args[split + 1:]
    path, direct = "", []
    while options:
        flag, value, options = options[0], options[1], options[2:]
        if flag == "--socket":
            path = value
        elif flag == "--direct":
            direct.append(value)
    proxy = _listen("127.0.0.1", 0)
    port = proxy.getsockname()[1]
    threading.Thread(target=_serve, args=(proxy, path, None), daemon=True).start()
    for target in direct:
        host, _, raw = target.rpartition(":")
        address = "127.0.0.1" if host == "localhost" else host
        try:
            listener = _listen(address, int(raw))
        except OSError as e:  # not a loopback address here; the proxy still serves it
            print(f"clone egress bridge: cannot listen on {target}: {e}", file=sys.stderr, flush=True)
            continue
        threading.Thread(target=_serve, args=(listener, path, target), daemon=True).start()
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    url = f"http://127.0.0.1:{port}"
    env.update(HTTPS_PROXY=url, HTTP_PROXY=url, https_proxy=url, http_proxy=url)
    child = subprocess.Popen(argv, env=env)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda number, _frame: child.send_signal(number))
    while True:
        try:
            code = child.wait()
            break
        except InterruptedError:
            continue
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
