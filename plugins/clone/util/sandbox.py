"""The sandbox every agent run and every check run goes through: bubblewrap (``bwrap``).

:func:`wrap` turns an argv and its environment into a ``bwrap`` argv that sees, deny by default:

* the system read-only (``/usr``, ``/bin``, ``/lib*``, ``/opt``, a short list of ``/etc`` entries, never
  ``/etc/shadow``, ``/etc/ssh``, ``/run`` or ``/var``), each ``PATH`` directory and toolchain directory named
  in the environment read-only, and absolute paths the command itself names;
* the work tree read-write with its ``.git`` read-only, the repo's setup env (``<workspace>/envs/<name>``)
  read-only for the agent and read-write for checks (its baseline cache always read-only);
* a private, empty ``HOME`` (at the same path) and ``/tmp``, so ``~/.ssh``, ``~/.git-credentials``,
  ``~/.config/gh``, ``$AIRFLOW_HOME`` and every other workspace and checkout are simply not there; only the
  agent's own CLI config (``CODEX_HOME`` or ``~/.codex``, ``CLAUDE_CONFIG_DIR`` or ``~/.claude``) is bound back;
* its own PID, IPC and UTS namespaces (no ``/proc/<worker>/environ``), a new session, killed with its parent;
* no network for checks (``checks_network: true`` in repos.yaml opts a repo in); for agents
  ``CLONE_SANDBOX_AGENT_NETWORK``: ``model`` (default: a private network namespace whose only way out is
  Clone's egress proxy, to the model API's host:port alone; clone/util/egress.py), ``host`` (the worker's
  network) or ``none`` (for agents that need no network).

``CLONE_SANDBOX`` = ``auto`` (default: sandbox when bwrap works here, else run unsandboxed with a loud
warning on every run), ``required`` (refuse to run without it) or ``off`` (never, warned on every run).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from clone.errors import CommandError, ConfigError, SandboxUnavailable
from clone.util import runner

log = logging.getLogger("clone.sandbox")

MODES = ("auto", "required", "off")
AGENT_NETWORKS = ("host", "none", "model")
#: Run inside the sandbox in ``model`` mode: the agent's way to its model API (see clone/util/egress.py).
BRIDGE = Path(__file__).resolve().with_name("egress_bridge.py")
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt")
#: What of /etc programs need (users, DNS, TLS roots, the dynamic linker); no keys, no shadow, no gitconfig.
_ETC = ("passwd", "group", "hosts", "resolv.conf", "nsswitch.conf", "host.conf", "gai.conf", "services",
        "protocols", "localtime", "timezone", "ssl", "ca-certificates", "ca-certificates.conf", "pki",
        "alternatives", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "mime.types", "os-release",
        "debian_version", "java-17-openjdk", "python3", "python3.11", "profile", "bash.bashrc", "inputrc",
        "environment", "login.defs", "shells", "magic", "subuid", "subgid")
#: Environment variables naming toolchains the sandbox shows read-only.
_TOOLCHAIN_VARS = ("GOROOT", "GOMODCACHE", "GOPATH", "CARGO_HOME", "RUSTUP_HOME", "JAVA_HOME", "MAVEN_HOME",
                   "NVM_DIR", "PYENV_ROOT", "VIRTUAL_ENV", "NODE_PATH")
#: Toolchains installed under HOME, shown read-only at their place (never ~/.cargo/credentials.toml).
_HOME_TOOLCHAINS = (".pyenv", ".rustup", ".cargo/bin", ".cargo/registry", ".cargo/git", ".nvm", "go/pkg/mod",
                    ".local/share/uv/python", ".local/bin", ".volta", ".bun/bin", ".deno/bin", ".sdkman/candidates")
#: Cache variables pointed into the private HOME (a cache outside is not there, or must not be written).
_CACHE_VARS = ("GOCACHE", "UV_CACHE_DIR", "PIP_CACHE_DIR", "npm_config_cache", "XDG_CACHE_HOME")
_PROBE_TIMEOUT = 20.0


def mode(env: Mapping[str, str] | None = None) -> str:
    value = (os.environ if env is None else env).get("CLONE_SANDBOX", "").strip().lower() or "auto"
    if value not in MODES:
        raise ConfigError(f"CLONE_SANDBOX must be one of {', '.join(MODES)}, got {value!r}")
    return value


def agent_network_mode(env: Mapping[str, str] | None = None) -> str:
    value = (os.environ if env is None else env).get("CLONE_SANDBOX_AGENT_NETWORK", "").strip().lower() or "model"
    if value not in AGENT_NETWORKS:
        raise ConfigError(f"CLONE_SANDBOX_AGENT_NETWORK must be one of {', '.join(AGENT_NETWORKS)}, got {value!r}")
    return value


def agent_network(env: Mapping[str, str] | None = None) -> bool:
    """Whether the agent shares the host network (``host``); ``model`` and ``none`` unshare it."""
    return agent_network_mode(env) == "host"


def active() -> bool:
    """Whether :func:`wrap` will sandbox (CLONE_SANDBOX is not off and bwrap works here)."""
    return mode() != "off" and probe() is None


def _extra_paths(name: str, env: Mapping[str, str] | None = None) -> list[Path]:
    raw = (os.environ if env is None else env).get(name, "")
    paths = [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]
    if bad := [str(p) for p in paths if not p.is_absolute()]:
        raise ConfigError(f"{name}: every path must be absolute, got {', '.join(bad)}")
    return paths


@functools.lru_cache(maxsize=1)
def probe() -> str | None:
    """None when bwrap can build a sandbox on this kernel, else why not (cached for the process)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bwrap is not installed (apt-get install bubblewrap)"
    try:
        proc = runner.run((bwrap, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--unshare-pid",
                           "--unshare-net", "--unshare-ipc", "--die-with-parent", "--", "true"),
                          cwd=Path("/"), env={"PATH": os.defpath}, timeout=_PROBE_TIMEOUT, check=False)
    except CommandError as e:
        return f"bwrap could not run: {e}"
    if not proc.ok:
        return (f"bwrap cannot create namespaces here ({proc.tail(5)[:300]}); the kernel must allow "
                "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
                "user.max_user_namespaces > 0) or bwrap must be setuid")
    return None


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


class _Mounts:
    """bwrap mount options in order, skipping what does not exist and what would expose a secret root."""

    def __init__(self, hidden: Iterable[Path]) -> None:
        self.args: list[str] = []
        self.seen: dict[str, bool] = {}  # bound target -> writable
        self.hidden = [p for p in hidden if str(p) not in ("", "/")]

    def _exposes(self, path: Path) -> bool:
        return any(_under(h, path) for h in self.hidden)  # binding /home would show HOME's secrets

    def bind(self, path: Path | str, *, writable: bool = False, trust: str = "explicit") -> None:
        """``trust``: ``explicit`` (Clone's own choice), ``env`` (the worker's PATH and toolchain variables:
        never a parent of a private root) or ``argv`` (named on a command line: never in or above one)."""
        path = Path(path)
        if not path.is_absolute() or not path.exists():
            return
        real = path.resolve()
        inside = any(_under(path, h) for h in self.hidden)
        if trust != "explicit" and (self._exposes(real) or (trust == "argv" and inside)):
            log.warning("sandbox: not showing %s: it is in or above a private directory (HOME, AIRFLOW_HOME, "
                        "the other workspaces)", path)
            return
        for target in dict.fromkeys((str(path), str(real))):
            if not self._covered(target, writable):
                self.seen[target] = writable
                self.args += ["--bind" if writable else "--ro-bind", str(real), target]

    def _covered(self, target: str, writable: bool) -> bool:
        """Whether ``target`` already shows, as it is on the host, through a bind of itself or of a directory
        above it with the same access. Binding it again would be a no-op at best; onto a symlink in such a
        tree (a virtualenv's ``bin/python``) bwrap fails: "Can't create file at ...". A bind with other
        access (``.git`` read-only in the writable work tree) is still made."""
        return any(_under(Path(target), Path(seen)) and access == writable for seen, access in self.seen.items())


def _tree_of(directory: Path) -> Path:
    """What a program in ``directory`` needs: its virtualenv or npm package tree, else the directory."""
    if directory.name == ".bin" and directory.parent.name == "node_modules":
        return directory.parent
    if directory.name == "bin" and (directory.parent / "pyvenv.cfg").is_file():
        return directory.parent
    return directory


def _program_trees(directory: Path, limit: int = 500) -> list[Path]:
    """A PATH directory's tree, plus the trees its symlinks lead to (pipx, ``uv tool``, npm -g links)."""
    trees = [_tree_of(directory)]
    try:
        entries = list(os.scandir(directory))[:limit]
    except OSError:
        return trees
    for item in entries:
        if item.is_symlink():
            target = Path(os.path.realpath(item.path)).parent
            if not _under(target, directory) and (tree := _tree_of(target)) not in trees:
                trees.append(tree)
    return trees


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME", "")
    return Path(home) if home.startswith("/") and home != "/" else Path("/tmp/home")


def wrap(argv: Sequence[str], env: Mapping[str, str], *, purpose: str, workdir: Path,
         writable: Iterable[Path] = (), env_root: Path | None = None, network: bool = False,
         handed: Iterable[str] = (), egress: Path | None = None,
         direct: Sequence[str] = ()) -> tuple[list[str], dict[str, str]]:
    """``(argv, env)`` to run ``argv`` in the sandbox (or unchanged, warned, when it is off/unavailable).

    ``purpose`` is ``agent`` or ``check``; ``writable`` are extra paths the command must write (the agent's
    scratch dir); ``env_root`` is the repo's setup env; ``network`` shares the host network; ``handed`` are
    the names of variables the operator hands over (CLONE_AGENT_ENV_PASSTHROUGH): an absolute path in one is
    shown read-write (the file, or the directory that will hold it). ``egress`` (the unix socket of an
    :class:`clone.util.egress.Proxy`) runs ``argv`` under ``egress_bridge.py`` in a private network
    namespace, its only way out that proxy; ``direct`` are loopback ``host:port`` the bridge also listens on.
    """
    if purpose not in ("agent", "check"):
        raise ValueError(f"purpose must be agent or check, got {purpose!r}")
    chosen = mode()
    if chosen == "off":
        log.warning("SANDBOX OFF (CLONE_SANDBOX=off): the %s runs as the worker's user and can read every "
                    "file it can, including credentials", purpose)
        return list(argv), dict(env)
    if why := probe():
        if chosen == "required":
            raise SandboxUnavailable(f"CLONE_SANDBOX=required but the sandbox is unavailable: {why}")
        log.warning("SANDBOX UNAVAILABLE, running the %s UNSANDBOXED (CLONE_SANDBOX=auto): %s. It can read "
                    "every file the worker can. Fix the kernel/bwrap or set CLONE_SANDBOX=required to refuse.",
                    purpose, why)
        return list(argv), dict(env)
    env = dict(env)
    home = _home(env)
    workdir = Path(workdir).resolve()
    airflow_home = Path(os.environ.get("AIRFLOW_HOME", str(Path.home() / "airflow"))).expanduser()
    mounts = _Mounts([home, Path.home(), airflow_home, workdir.parent])
    out = ["bwrap", "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
           "--unshare-cgroup-try", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", "/var/tmp",
           "--tmpfs", str(home)]
    if egress is not None:
        network = False
        argv = [sys.executable, str(BRIDGE), "--socket", str(egress),
                *[w for target in direct for w in ("--direct", target)], "--", *argv]
    if not network:
        out.append("--unshare-net")
    for system in _SYSTEM_DIRS:
        if os.path.islink(system):
            out += ["--symlink", os.readlink(system), system]
        else:
            out += ["--ro-bind-try", system, system]
    for name in _ETC:
        out += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for entry in env.get("PATH", "").split(os.pathsep):
        path = Path(entry)
        if entry.startswith("/") and not _under(path, workdir) and not any(_under(path, Path(s))
                                                                            for s in _SYSTEM_DIRS):
            for tree in _program_trees(path):
                mounts.bind(tree, trust="env")
    for relative in _HOME_TOOLCHAINS:
        mounts.bind(Path.home() / relative, trust="env")
    for var in _TOOLCHAIN_VARS:
        if env.get(var, "").startswith("/"):
            mounts.bind(env[var], trust="env")
    if purpose == "agent":  # the operator's CLONE_AGENT_COMMAND: its program and the files it names
        for word in argv:
            if word.startswith("/") and not _under(Path(word), workdir):
                mounts.bind(Path(word), trust="argv")
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):  # Clone's own Python (no secrets)
        mounts.bind(prefix, trust="env")
    if egress is not None:
        mounts.bind(BRIDGE)
        mounts.bind(Path(egress).parent)
    for path in _extra_paths("CLONE_SANDBOX_READ_ONLY"):
        mounts.bind(path)
    if purpose == "agent":
        for configured, default in (("CODEX_HOME", home / ".codex"), ("CLAUDE_CONFIG_DIR", home / ".claude")):
            mounts.bind(Path(env[configured]) if env.get(configured) else default, writable=True)
        mounts.bind(home / ".claude.json", writable=True)
    for path in [*writable, *_extra_paths("CLONE_SANDBOX_WRITABLE")]:
        mounts.bind(path, writable=True)
    for name in handed:
        value = Path(env.get(name, "") or "relative")
        if value.is_absolute():
            mounts.bind(value if value.exists() else value.parent, writable=True, trust="argv")
    mounts.bind(workdir, writable=True)
    mounts.bind(workdir / ".git")  # Clone alone writes git state: config, info/, hooks, refs
    if env_root is not None and env_root.is_dir():
        mounts.bind(env_root, writable=purpose == "check")
        (env_root / "baseline").mkdir(exist_ok=True)
        mounts.bind(env_root / "baseline")  # what was red before is not the checks' to say
    for var in _CACHE_VARS:
        if var in env or var == "XDG_CACHE_HOME":
            env[var] = str(home / ".cache" / var.lower())
    env.update(HOME=str(home), TMPDIR="/tmp", CLONE_SANDBOXED="1")
    log.info("sandbox: the %s runs in bwrap (%s network; writable: its workdir%s)", purpose,
             "host" if network else "model-API-only" if egress is not None else "no", " and its scratch dirs" if writable or handed else "")
    return [*out, *mounts.args, "--chdir", str(workdir), "--", *argv], env
