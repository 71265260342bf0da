"""Helpers of tests/util/test_git_auth.py: the leak scan, a pre-receive hook that holds a push mid-flight,
keys made in memory (never written where the scan looks), and a real sshd on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa



def scan(secrets: list[bytes], roots: list[Path], skip_pids: set[int],
         skip_files: tuple[str, ...] = ()) -> tuple[list[str], int]:
    """Where any of ``secrets`` shows: /proc/*/cmdline and environ (but ``skip_pids``) and files under
    ``roots`` (but those named in ``skip_files``); and how many git processes were alive while scanning."""
    hits, gits = [], 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in skip_pids:
            continue
        for name in ("cmdline", "environ"):
            try:
                data = (proc / name).read_bytes()
            except OSError:
                continue
            if name == "cmdline" and data.startswith((b"git\0", b"/usr/lib/git-core/", b"ssh\0", b"sh\0")):
                gits += data.split(b"\0")[0].endswith(b"git") or b"git-" in data
            hits += [f"/proc/{proc.name}/{name}" for secret in secrets if secret in data]
    for root in roots:
        for path in root.rglob("*"):
            try:
                if path.is_file() and not path.is_symlink() and path.stat().st_size < 50_000_000 \
                        and path.name not in skip_files:
                    data = path.read_bytes()
                    hits += [str(path) for secret in secrets if secret in data]
            except OSError:
                continue
    return hits, gits


class HeldPush:
    """A pre-receive hook in ``bare`` that waits until :meth:`scan_then_release` ran (at most 30 s)."""

    def __init__(self, bare: Path, marks: Path, secrets: list[bytes] | Callable[[], list[bytes]], roots: list[Path],
                 *, wait: float = 60.0, skip_files: tuple[str, ...] = ()):
        self.mark, self.go = marks / "in-push", marks / "go"
        marks.mkdir(parents=True, exist_ok=True)
        hook = bare / "hooks" / "pre-receive"
        hook.write_text(f"#!/bin/sh\ncat >/dev/null\ntouch '{self.mark}'\ni=0\n"
                        f"while [ ! -e '{self.go}' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\n")
        hook.chmod(0o755)
        self.secrets, self.roots, self.wait, self.skip_files = secrets, roots, wait, skip_files
        self.hits: list[str] | None = None
        self.git_processes = 0
        self.agents_mid_push: set[int] = set()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        deadline = time.monotonic() + self.wait
        while not self.mark.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        found = self.secrets() if callable(self.secrets) else self.secrets
        self.searched = len(found)
        self.hits, self.git_processes = scan(found, self.roots, {os.getpid()}, self.skip_files)
        self.agents_mid_push = agents()
        self.go.touch()

    def join(self) -> None:
        self._thread.join(timeout=self.wait + 10)


def agents() -> set[int]:
    """Pids of live ssh-agent processes (not zombies waiting for init to reap them)."""
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "comm").read_text().strip() == "ssh-agent" \
                    and (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":  # a zombie holds no key
                found.add(int(proc.name))
        except OSError:
            continue
    return found


def rsa_pem() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def ed25519_openssh() -> tuple[str, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, public.decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:
    """A real OpenSSH server on 127.0.0.1:<free port> accepting ``authorized`` for the current user."""

    def __init__(self, folder: Path, sshd: str, authorized: str):
        folder.mkdir(parents=True)
        self.port = free_port()
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "host")], check=True)
        (folder / "authorized_keys").write_text(authorized + "\n")
        config = folder / "sshd_config"
        config.write_text(f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host'}\n"
                          f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPidFile {folder / 'sshd.pid'}\n"
                          "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                          "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.05)
        host = (folder / "host.pub").read_text().split()
        self.known_hosts = folder / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host[0]} {host[1]}\n")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
