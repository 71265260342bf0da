"""Every git command Clone runs goes through :class:`Git`.

Git runs hermetically: an explicit repository path (never the process cwd), ``GIT_*``
variables that could redirect it scrubbed, no hooks, no GPG signing, no terminal prompts,
and Airflow's own secrets kept out of its environment. Commits carry the bot identity.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

from clone.config import environment
from clone.util import runner
from clone.errors import ConfigError, GitError, PushConflict

log = logging.getLogger(__name__)

GIT_TIMEOUT_SECONDS = 300.0
_CREDENTIALS_IN_URL = re.compile(r"://[^@/\s]+@")


def redact_url(text: str | None) -> str:
    """``text`` with credentials in any URL replaced, safe to log."""
    return _CREDENTIALS_IN_URL.sub("://***@", text or "")


#: Variables a user's git set-up legitimately needs (ssh agents, askpass helpers, proxies).
#: GIT_SSL_NO_VERIFY is not among them: a worker never talks to its remotes without TLS verification.
_KEEP_GIT_VARS = {"GIT_SSH", "GIT_SSH_COMMAND", "GIT_ASKPASS", "GIT_SSL_CAINFO"}
#: The global config every Clone git command reads instead of ~/.gitconfig (which an agent or a check
#: could once write): no hooks, no fsmonitor, no global attributes, no ext:: transport, no signing. The
#: user's own git settings (credential helpers, url rewrites, proxies) come in only through CLONE_GIT_CONFIG.
_GLOBAL_CONFIG = """\
# Written by Clone (clone.util.git): the global git config of every git command Clone runs.
{include}[core]
\thooksPath = /dev/null
\tfsmonitor = false
\tattributesFile = /dev/null
[commit]
\tgpgsign = false
[tag]
\tgpgsign = false
[protocol "ext"]
\tallow = never
"""


def global_config_file(user_config: str = "") -> Path:
    """Clone's global git config (see ``_GLOBAL_CONFIG``), written atomically under a private directory."""
    include = ""
    if user_config:
        if not Path(user_config).is_absolute() or "\n" in user_config:
            raise ConfigError(f"CLONE_GIT_CONFIG must be an absolute path, got {user_config!r}")
        include = "[include]\n\tpath = " + user_config.replace("\\", "\\\\").replace('"', '\\"') + "\n"
    text = _GLOBAL_CONFIG.format(include=include)
    folder = Path(tempfile.gettempdir()) / f"clone-git-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.getuid() or folder.stat().st_mode & 0o077:
        raise GitError(f"{folder} must be a private directory of this user (mode 0700); remove it")
    path = folder / f"gitconfig-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        scratch = folder / f".{path.name}.{os.getpid()}.tmp"
        scratch.write_text(text, encoding="utf-8")
        os.replace(scratch, path)
    return path


_ALWAYS = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "commit.gpgsign=false",
           "-c", "tag.gpgsign=false",
           "-c", "advice.detachedHead=false", "-c", "init.defaultBranch=main")


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who the bot's commits are by."""

    name: str
    email: str


def git_env(identity: Identity | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment git runs with: the worker's, minus redirecting GIT_* vars and Airflow secrets."""
    user_config = (os.environ if base is None else base).get("CLONE_GIT_CONFIG", "")
    env = {key: value for key, value in environment.without_secrets(base).items()
           if not (key.startswith("GIT_") and key not in _KEEP_GIT_VARS)}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_CONFIG_NOSYSTEM="1",
               GIT_CONFIG_GLOBAL=str(global_config_file(user_config)))
    if identity is not None:
        env.update(
            GIT_AUTHOR_NAME=identity.name,
            GIT_AUTHOR_EMAIL=identity.email,
            GIT_COMMITTER_NAME=identity.name,
            GIT_COMMITTER_EMAIL=identity.email,
        )
    return env


class Git:
    """git, bound to one repository path."""

    def __init__(self, path: Path | str, identity: Identity | None = None) -> None:
        self.path = Path(path)
        self.identity = identity
        self._env = git_env(identity)

    def __repr__(self) -> str:
        return f"Git({str(self.path)!r})"

    def run(self, *args: str, check: bool = True, timeout: float = GIT_TIMEOUT_SECONDS,
            stdin: str | None = None) -> runner.CommandResult:
        """Run ``git <args>`` in this repository (logged, with credentials in URLs masked)."""
        log.info("$ git %s  (in %s)", redact_url(" ".join(args)), self.path)
        return runner.run(
            ("git", *_ALWAYS, *args),
            cwd=self.path,
            env=self._env,
            timeout=timeout,
            stdin=stdin,
            check=check,
            error_class=GitError,
        )

    def out(self, *args: str, timeout: float = GIT_TIMEOUT_SECONDS) -> str:
        """stdout of a git command that must succeed, stripped."""
        return self.run(*args, timeout=timeout).stdout.strip()

    # -- reading --------------------------------------------------------------------------
    def is_repo(self) -> bool:
        if not self.path.is_dir():
            return False
        result = self.run("rev-parse", "--git-dir", check=False)
        return result.ok

    def head(self) -> str:
        return self.out("rev-parse", "HEAD")

    def rev(self, ref: str) -> str | None:
        result = self.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        return result.stdout.strip() if result.ok else None

    def remote_url(self, remote: str) -> str | None:
        result = self.run("remote", "get-url", remote, check=False)
        return result.stdout.strip() if result.ok and result.stdout.strip() else None

    def remote_default_branch(self, remote: str) -> str | None:
        """The branch the remote's HEAD points at, asking the remote itself."""
        result = self.run("ls-remote", "--symref", remote, "HEAD", check=False, timeout=120)
        match = re.search(r"^ref: refs/heads/(\S+)\s+HEAD", result.stdout, re.MULTILINE)
        return match.group(1) if result.ok and match else None

    def changed_files(self, base: str, head: str = "HEAD") -> list[str]:
        return [line for line in self.out("diff", "--no-ext-diff", "--no-textconv", "--name-only",
                                          f"{base}..{head}").splitlines() if line]

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self.run("merge-base", "--is-ancestor", ancestor, descendant, check=False).returncode == 0

    # -- changing ---------------------------------------------------------------------------
    @classmethod
    def clone(cls, url: str, dest: Path, identity: Identity | None = None) -> Git:
        dest.parent.mkdir(parents=True, exist_ok=True)
        log.info("$ git clone %s %s", redact_url(url), dest)
        runner.run(("git", *_ALWAYS, "clone", "--quiet", "--no-checkout", "--", url, str(dest)),
                   cwd=dest.parent, env=git_env(identity), timeout=GIT_TIMEOUT_SECONDS * 2,
                   error_class=GitError)
        return cls(dest, identity)

    @classmethod
    def init(cls, path: Path, identity: Identity | None = None, branch: str = "main") -> Git:
        path.mkdir(parents=True, exist_ok=True)
        repo = cls(path, identity)
        repo.run("init", "--quiet", "-b", branch)
        return repo

    def fetch(self, remote: str, *refspecs: str) -> None:
        self.run("fetch", "--quiet", "--prune", "--no-tags", "--", remote, *refspecs, timeout=GIT_TIMEOUT_SECONDS * 2)

    def snapshot_tree(self) -> str:
        """Stage everything in the work tree and return the index's tree id."""
        self.run("add", "--all")
        return self.out("write-tree")

    def reset_index(self, tree: str) -> None:
        """Make the index exactly ``tree`` (the work tree is left alone)."""
        self.run("read-tree", tree)

    def stage(self, *paths: str) -> None:
        """Stage these paths (those that exist in the work tree)."""
        existing = [p for p in paths if (self.path / p).exists()]
        if existing:
            self.run("add", "--all", "--", *existing)

    def commit_index(self, message: str) -> str | None:
        """Commit what is staged with the bot identity; ``None`` when nothing is staged."""
        if not self.run("diff", "--no-ext-diff", "--cached", "--quiet", check=False).returncode:
            return None
        self.run("commit", "--quiet", "--no-verify", "-F", "-", stdin=message)
        return self.head()

    def commit_all(self, message: str) -> str | None:
        """Stage everything and commit with the bot identity; ``None`` when nothing changed."""
        self.run("add", "--all")
        return self.commit_index(message)

    def rebase(self, onto: str) -> None:
        """Rebase the current branch onto ``onto``; on conflict abort and raise PushConflict."""
        result = self.run("rebase", "--quiet", onto, check=False)
        if result.ok:
            return
        conflicts = self.run("diff", "--name-only", "--diff-filter=U", check=False).stdout.split()
        self.run("rebase", "--abort", check=False)
        raise PushConflict(
            f"rebasing {self.path} onto {onto} conflicts in: {', '.join(conflicts) or 'unknown files'}",
            argv=result.argv, returncode=result.returncode, output=result.tail(),
        )
