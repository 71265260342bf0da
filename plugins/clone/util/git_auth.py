"""Scoped push credentials: what Clone hands the one git command that talks to a remote, and only that command.

``CLONE_GIT_AUTH`` (``auto`` | ``token`` | ``own``, default ``auto``) picks how:

* an **https remote** gets the ``github_default`` connection's token (its password, or a GitHub App
  installation token, :mod:`clone.github.app_auth`) through a credential helper that reads it from a pipe the
  git process inherits (``/dev/fd/N``): the token is never in an argv, an environment or a file. Your own
  credential helpers are cleared for that command (``-c credential.helper=``) so git asks only this one. In
  ``auto`` only remotes on the connection's GitHub host get it (``github.com`` for ``api.github.com``), and
  plain ``http://`` only on loopback; ``token`` hands it to every https remote and fails without one.
* an **ssh remote** of a repos.yaml entry with ``deploy_key: <connection>`` gets a private ``ssh-agent``
  started for that one command, the key added with ``ssh-add -`` from stdin, ``GIT_SSH_COMMAND`` using that
  agent only (``IdentitiesOnly``, no ``~/.ssh/config``, ``StrictHostKeyChecking=yes`` against
  ``CLONE_SSH_KNOWN_HOSTS`` or ssh's default known_hosts); the agent is killed when the command returns.
* ``own`` hands git nothing: your ``CLONE_GIT_CONFIG`` credential helper, ``GIT_SSH_COMMAND`` or ssh agent
  stay in charge (and a ``deploy_key:`` is ignored with a warning).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import shlex
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from clone.errors import ConfigError, GitError

log = logging.getLogger(__name__)

MODES = ("auto", "token", "own")
#: git subcommands that talk to a remote (and so may need a credential).
NETWORK = frozenset({"push", "fetch", "ls-remote", "clone", "pull"})
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_SCP_LIKE = re.compile(r"^(?:[^@/:\s]+@)?(?P<host>[^/:\s]+):(?!//)")
AGENT_TIMEOUT = 30.0


@dataclasses.dataclass(frozen=True)
class Extra:
    """What one git command gets on top of its usual argv and environment."""

    args: tuple[str, ...] = ()
    env: Mapping[str, str | None] = dataclasses.field(default_factory=dict)  # None: drop the variable
    fds: tuple[int, ...] = ()


def subcommand(args) -> str | None:
    """The git subcommand in ``args`` (skipping ``-c key=value`` and other leading options)."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("-c", "-C"):
            skip = True
        elif not str(arg).startswith("-"):
            return str(arg)
    return None


def kind_of(url: str | None) -> tuple[str, str | None]:
    """(``https``|``http``|``ssh``|``other``, host) of a remote URL."""
    url = (url or "").strip()
    if "://" in url:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme in ("https", "http"):
            return scheme, parts.hostname
        if scheme in ("ssh", "git+ssh", "ssh+git"):
            return "ssh", parts.hostname
        return "other", parts.hostname
    match = _SCP_LIKE.match(url)
    if match and not url.startswith(("/", ".")):
        return "ssh", match.group("host")
    return "other", None


def web_host(api_base_url: str) -> str | None:
    """The git host of a GitHub API: ``github.com`` for ``api.github.com``, else the API's own host."""
    host = urlsplit(api_base_url).hostname
    return "github.com" if host == "api.github.com" else host


@dataclasses.dataclass(frozen=True)
class GitAuth:
    """How git commands against ``url`` get their credential (see the module doc). Secrets are fetched only
    when a network command runs (``token``/``deploy_key`` are callables), and never kept here."""

    url: str | None
    mode: str = "auto"
    token: Callable[[], tuple[str, str]] | None = dataclasses.field(default=None, repr=False)  # (api url, token)
    deploy_key: Callable[[], str] | None = dataclasses.field(default=None, repr=False)
    deploy_key_name: str | None = None
    known_hosts: str | None = None

    def applies(self, args) -> bool:
        return self.mode != "own" and subcommand(args) in NETWORK

    @contextlib.contextmanager
    def session(self, timeout: float = 600.0) -> Iterator[Extra]:
        """The credential of one network command (at most ``timeout`` s), set up before it, torn down after."""
        kind, host = kind_of(self.url)
        if self.mode == "own":
            yield Extra()
        elif kind == "ssh" and self.deploy_key is not None:
            with ssh_agent_session(self.deploy_key(), self.known_hosts, int(timeout) + 60) as extra:
                yield extra
        elif kind in ("https", "http") and self.token is not None:
            with self._token_session(kind, host) as extra:
                yield extra
        else:
            yield Extra()

    @contextlib.contextmanager
    def _token_session(self, kind: str, host: str | None) -> Iterator[Extra]:
        if kind == "http" and host not in _LOOPBACK:
            log.warning("git auth: not handing a token to %s over plain http", host)
            yield Extra()
            return
        api, token = self.token()
        if self.mode == "auto" and (not token or host != web_host(api)):
            yield Extra()  # not GitHub's host (or no token): the user's own set-up, as before
            return
        if not token:
            raise GitError("CLONE_GIT_AUTH=token but the GitHub connection has no token (password) and no "
                           "GitHub App extra; set one, or CLONE_GIT_AUTH=auto|own")
        with token_pipe(token) as fd:
            yield Extra(args=token_helper_args(self.url or "", fd), fds=(fd,))


def token_helper_args(url: str, fd: int) -> tuple[str, ...]:
    """``-c`` options: clear every configured credential helper, then answer ``get`` from ``/dev/fd/<fd>``,
    for this remote's scheme and host only."""
    parts = urlsplit(url)
    scope = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    helper = f'!f() {{ test "$1" = get && cat /dev/fd/{fd}; }}; f'
    return ("-c", "credential.helper=", "-c", f"credential.{scope}.helper={helper}")


@contextlib.contextmanager
def token_pipe(token: str) -> Iterator[int]:
    """A pipe holding the credential-helper answer for ``token``; yields the read end (closed afterwards)."""
    if any(c in token for c in "\n\r\0"):
        raise GitError("the GitHub token contains a line break or NUL; it cannot be handed to git")
    read, write = os.pipe()
    try:
        os.write(write, f"username=x-access-token\npassword={token}\n".encode())  # < 64 KiB: never blocks
        os.close(write)
        write = -1
        yield read
    finally:
        for fd in (read, write):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)


def _tool_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": tempfile.gettempdir()}


@contextlib.contextmanager
def ssh_agent_session(private_key: str, known_hosts: str | None, lifetime: int = 660) -> Iterator[Extra]:
    """A private ssh-agent holding ``private_key`` (added from stdin), for one command; killed afterwards.
    The key's ``lifetime`` (seconds) bounds it even if this worker is SIGKILLed before it can kill the agent."""
    from clone.util import runner

    folder = Path(tempfile.mkdtemp(prefix="clone-ssh-"))  # mode 0700
    sock = folder / "agent.sock"
    pid = None
    try:
        started = runner.run(("ssh-agent", "-s", "-a", str(sock)), cwd=folder, env=_tool_env(),
                             timeout=AGENT_TIMEOUT, error_class=GitError)
        found = re.search(r"SSH_AGENT_PID=(\d+)", started.stdout)
        if not found:
            raise GitError(f"ssh-agent did not say its pid: {started.tail(5)}")
        pid = int(found.group(1))
        env = {**_tool_env(), "SSH_AUTH_SOCK": str(sock)}
        added = runner.run(("ssh-add", "-q", "-t", str(lifetime), "-"), cwd=folder, env=env,
                           stdin=private_key.strip() + "\n", timeout=AGENT_TIMEOUT, check=False)
        if not added.ok:
            raise GitError(f"ssh-add refused the deploy key: {added.tail(3)}")
        public = runner.run(("ssh-add", "-L"), cwd=folder, env=env, timeout=AGENT_TIMEOUT, error_class=GitError)
        (folder / "key.pub").write_text(public.stdout.strip() + "\n", encoding="utf-8")
        options = ["-F", "/dev/null", "-o", "IdentitiesOnly=yes", "-o", f"IdentityAgent={sock}",
                   "-o", f"IdentityFile={folder / 'key.pub'}", "-o", "StrictHostKeyChecking=yes",
                   "-o", "BatchMode=yes", "-o", "PasswordAuthentication=no"]
        if known_hosts:
            options += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"]
        command = "ssh " + " ".join(shlex.quote(option) for option in options)
        yield Extra(env={"GIT_SSH_COMMAND": command, "GIT_SSH": None, "GIT_SSH_VARIANT": "ssh",
                         "SSH_AUTH_SOCK": None})
    finally:
        if pid is not None:
            _kill_agent(pid)
        shutil.rmtree(folder, ignore_errors=True)


def _kill_agent(pid: int) -> None:
    for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
                return
            time.sleep(0.02)
    log.warning("ssh-agent %d did not exit", pid)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def mode_from_env(env: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """``CLONE_GIT_AUTH`` and ``CLONE_SSH_KNOWN_HOSTS``, checked."""
    env = os.environ if env is None else env
    mode = (env.get("CLONE_GIT_AUTH") or "auto").strip().lower()
    if mode not in MODES:
        raise ConfigError(f"CLONE_GIT_AUTH must be one of {', '.join(MODES)}, got {env.get('CLONE_GIT_AUTH')!r}")
    known = (env.get("CLONE_SSH_KNOWN_HOSTS") or "").strip() or None
    if known is not None and (not Path(known).is_absolute() or not Path(known).is_file()):
        raise ConfigError(f"CLONE_SSH_KNOWN_HOSTS must be the absolute path of a known_hosts file, got {known!r}")
    return mode, known


def deploy_key_of(conn_id: str, entry_name: str) -> str:
    """The private key in connection ``conn_id`` (extra ``private_key``, else its password)."""
    from airflow.sdk import BaseHook

    where = f"repos.yaml entry {entry_name!r}, field 'deploy_key'"
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as e:  # noqa: BLE001 - Airflow raises its own not-found types
        raise ConfigError(f"{where}: no Airflow connection {conn_id!r} ({type(e).__name__})") from None
    key = (getattr(conn, "extra_dejson", None) or {}).get("private_key") or conn.password or ""
    if not isinstance(key, str) or "PRIVATE KEY-----" not in key:
        raise ConfigError(f"{where}: connection {conn_id!r} holds no private key (put the PEM/OpenSSH key in "
                          "its extra 'private_key' or its password)")
    return key


def github_token(conn_id: str) -> tuple[str, str]:
    """(API base URL, token) of connection ``conn_id``; ("", "") when there is no such connection (then git
    uses your own set-up; an App connection GitHub refuses is an error)."""
    from clone.github.connection import endpoint_for

    try:
        endpoint = endpoint_for(conn_id)
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - Airflow's not-found errors differ between task and client
        log.info("git auth: no connection %r (%s); git uses your own credentials", conn_id, type(e).__name__)
        return "", ""
    return endpoint.base_url, endpoint.token


def for_remote(url: str | None, *, entry_name: str = "", deploy_key: str | None = None,
               conn_id: str = "github_default", env: Mapping[str, str] | None = None) -> GitAuth:
    """The GitAuth of one repo's remote under the current knobs."""
    mode, known = mode_from_env(env)
    if mode == "own" and deploy_key:
        log.warning("repos.yaml entry %r: deploy_key %r is ignored with CLONE_GIT_AUTH=own", entry_name, deploy_key)
    key = (lambda: deploy_key_of(deploy_key, entry_name)) if deploy_key and mode != "own" else None
    if deploy_key and mode != "own" and url and kind_of(url)[0] != "ssh":
        raise ConfigError(f"repos.yaml entry {entry_name!r}, field 'deploy_key': needs an ssh remote "
                          f"(git@host:owner/repo.git or ssh://...), and this repo's remote is not one")
    return GitAuth(url=url, mode=mode, token=lambda: github_token(conn_id), deploy_key=key,
                   deploy_key_name=deploy_key, known_hosts=known)
