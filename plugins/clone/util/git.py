"""Every git command Clone runs goes through :class:`Git`.

Git runs hermetically: an explicit repository path (never the process cwd), ``GIT_*``
variables that could redirect it scrubbed, no hooks, no GPG signing, no terminal prompts,
and Airflow's own secrets kept out of its environment. Commits carry the bot identity.

GitPython does the work: :class:`git.Repo` finds the repository, its remotes (config read in-process)
and ancestry (``Repo.is_ancestor``); ``repo.git`` builds every command (``rev-parse`` for refs and
commits: GitPython's own object reads need its deprecated ``GitDB`` backend or extra ``git cat-file``
processes, measured 3-7x slower per call). GitPython's own ``execute``
starts from the worker's ``os.environ`` (it can add variables, never remove them), so
:class:`RunnerGit` hands the command it built to :func:`clone.util.runner.run` instead: the
hermetic environment, the timeout (GitPython's ``kill_after_timeout``) killing the whole process
group, and masked logging stay what they were. GitPython is imported on first use
(``clone.util._gitpython``), not when a DAG file is parsed.
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
#: Variables GitPython's in-process reads would follow even for an explicit path.
_REDIRECTING = frozenset({"GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY"})
#: The global config every Clone git command reads instead of ~/.gitconfig (which an agent or a check
#: could once write): no fsmonitor, no global attributes, no ext:: transport, no signing. The user's own
#: git settings (credential helpers, url rewrites, proxies) come in only through CLONE_GIT_CONFIG.
#: Hooks are off through ``-c core.hooksPath`` (:data:`_ALWAYS`), not here: a push to a remote on this
#: machine (a bare repo by path) runs that remote's receive-pack with this same global config, and the
#: remote's own hooks (its branch protection) must still apply; git hands ``-c`` settings to no remote.
_GLOBAL_CONFIG = """\
# Written by Clone (clone.util.git): the global git config of every git command Clone runs.
{include}[core]
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


def _run(args, cwd: Path, env: Mapping[str, str], timeout: float, stdin: str | None,
         check: bool, error_class: type[GitError] = GitError, auth=None) -> runner.CommandResult:
    """``git <args>`` through the runner (logged with credentials in URLs masked). A network command of a
    repository with an ``auth`` (:class:`clone.util.git_auth.GitAuth`) gets its scoped credential."""
    log.info("$ git %s  (in %s)", redact_url(" ".join(args)), cwd)
    if auth is None or not auth.applies(args):
        return runner.run(("git", *_ALWAYS, *args), cwd=cwd, env=env, timeout=timeout, stdin=stdin, check=check,
                          error_class=error_class)
    with auth.session(timeout) as extra:
        merged = {**env, **{k: v for k, v in extra.env.items() if v is not None}}
        for key in [k for k, v in extra.env.items() if v is None]:
            merged.pop(key, None)
        return runner.run(("git", *_ALWAYS, *extra.args, *args), cwd=cwd, env=merged, timeout=timeout,
                          stdin=stdin, check=check, error_class=error_class, pass_fds=extra.fds)


class Git:
    """git, bound to one repository path: GitPython's ``Repo`` for reads, ``repo.git`` for commands."""

    def __init__(self, path: Path | str, identity: Identity | None = None, auth=None) -> None:
        self.path = Path(path)
        self.identity = identity
        self.auth = auth  # clone.util.git_auth.GitAuth: the credential of its network commands, or None
        self._env = git_env(identity)

    def __repr__(self) -> str:
        return f"Git({str(self.path)!r})"

    @property
    def repo(self):
        """A fresh GitPython ``Repo`` (refs and packs read anew: other processes change them)."""
        from clone.util._gitpython import open_repo

        redirecting = sorted(_REDIRECTING & os.environ.keys())
        if redirecting:  # GitPython's Repo honours these from os.environ even with an explicit path
            raise GitError(f"{', '.join(redirecting)} is set in the worker's environment and would redirect "
                           f"git away from {self.path}; unset it for Airflow")
        return open_repo(self.path, self._env, self.auth)

    def run(self, *args: str, check: bool = True, timeout: float = GIT_TIMEOUT_SECONDS,
            stdin: str | None = None) -> runner.CommandResult:
        """Run ``git <args>`` in this repository (logged, with credentials in URLs masked)."""
        return _run(args, self.path, self._env, timeout, stdin, check, auth=self.auth)

    def out(self, *args: str, timeout: float = GIT_TIMEOUT_SECONDS) -> str:
        """stdout of a git command that must succeed, stripped."""
        return self.run(*args, timeout=timeout).stdout.strip()

    # -- reading --------------------------------------------------------------------------
    def is_repo(self) -> bool:
        """True inside a git work tree or repository (like ``git rev-parse --git-dir``)."""
        if not self.path.is_dir():
            return False
        result = self.run("rev-parse", "--git-dir", check=False)
        return result.ok

    # head and rev ask ``git rev-parse`` (one process, through repo.git): GitPython's own object reads
    # would need its deprecated GitDB backend or more ``git cat-file`` processes per call.
    def head(self) -> str:
        status, out, err = self.repo.git.rev_parse("--verify", "--quiet", "HEAD^{commit}",
                                                   with_extended_output=True, with_exceptions=False)
        if status != 0 or not out.strip():
            raise GitError(f"{self.path}: HEAD has no commit yet ({err.strip() or 'rev-parse found none'})",
                           argv=("git", "rev-parse", "HEAD"), returncode=status, output=err)
        return out.strip()

    def rev(self, ref: str) -> str | None:
        """The commit ``ref`` names, or None when it names none."""
        status, out, _ = self.repo.git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}",
                                                 with_extended_output=True, with_exceptions=False)
        return out.strip() if status == 0 and out.strip() else None

    def remote_url(self, remote: str) -> str | None:
        try:
            url = next(iter(self.repo.remote(remote).urls), "")
        except (ValueError, GitError):
            return None
        return url.strip() or None

    def remote_default_branch(self, remote: str) -> str | None:
        """The branch the remote's HEAD points at, asking the remote itself."""
        status, out, _ = self.repo.git.ls_remote("--symref", remote, "HEAD", kill_after_timeout=120,
                                                 with_extended_output=True, with_exceptions=False)
        match = re.search(r"^ref: refs/heads/(\S+)\s+HEAD", out, re.MULTILINE)
        return match.group(1) if status == 0 and match else None

    def changed_files(self, base: str, head: str = "HEAD") -> list[str]:
        return [line for line in self.repo.git.diff("--no-ext-diff", "--no-textconv", "--name-only",
                                                    f"{base}..{head}").splitlines() if line]

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """True when ``ancestor`` is an ancestor of (or is) ``descendant``; False also when either is unknown."""
        try:
            return self.repo.is_ancestor(ancestor, descendant)
        except GitError:
            return False

    # -- changing ---------------------------------------------------------------------------
    @classmethod
    def clone(cls, url: str, dest: Path, identity: Identity | None = None, auth=None) -> Git:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _run(("clone", "--quiet", "--no-checkout", "--", url, str(dest)), dest.parent, git_env(identity),
             GIT_TIMEOUT_SECONDS * 2, None, check=True, auth=auth)
        return cls(dest, identity, auth)

    @classmethod
    def init(cls, path: Path, identity: Identity | None = None, branch: str = "main") -> Git:
        path.mkdir(parents=True, exist_ok=True)
        repo = cls(path, identity)
        repo.run("init", "--quiet", "-b", branch)
        return repo

    def fetch(self, remote: str, *refspecs: str) -> None:
        self.repo.git.fetch("--quiet", "--prune", "--no-tags", "--", remote, *refspecs,
                            kill_after_timeout=GIT_TIMEOUT_SECONDS * 2)

    def snapshot_tree(self) -> str:
        """Stage everything in the work tree and return the index's tree id."""
        git = self.repo.git
        git.add("--all")
        return git.write_tree().strip()

    def reset_index(self, tree: str) -> None:
        """Make the index exactly ``tree`` (the work tree is left alone)."""
        self.repo.git.read_tree(tree)

    def stage(self, *paths: str) -> None:
        """Stage these paths (those that exist in the work tree)."""
        existing = [p for p in paths if (self.path / p).exists()]
        if existing:
            self.repo.git.add("--all", "--", *existing)

    def commit_index(self, message: str) -> str | None:
        """Commit what is staged with the bot identity; ``None`` when nothing is staged."""
        repo = self.repo
        status, _, _ = repo.git.diff("--no-ext-diff", "--cached", "--quiet", with_extended_output=True,
                                     with_exceptions=False)
        if status == 0:
            return None
        repo.git.commit("--quiet", "--no-verify", "-F", "-", istream=message)
        return self.head()

    def commit_all(self, message: str) -> str | None:
        """Stage everything and commit with the bot identity; ``None`` when nothing changed."""
        self.repo.git.add("--all")
        return self.commit_index(message)

    def rebase(self, onto: str) -> None:
        """Rebase the current branch onto ``onto``; on conflict abort and raise PushConflict."""
        git = self.repo.git
        status, out, err = git.rebase("--quiet", onto, with_extended_output=True, with_exceptions=False)
        if status == 0:
            return
        conflicts = git.diff("--name-only", "--diff-filter=U", with_exceptions=False).split()
        git.rebase("--abort", with_exceptions=False)
        tail = "\n".join("\n".join(p for p in (out.rstrip(), err.rstrip()) if p).splitlines()[-40:])
        raise PushConflict(
            f"rebasing {self.path} onto {onto} conflicts in: {', '.join(conflicts) or 'unknown files'}",
            argv=("git", "rebase", "--quiet", onto), returncode=status, output=tail,
        )
