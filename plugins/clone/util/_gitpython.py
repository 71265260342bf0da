"""GitPython wired to Clone's runner; imported by :attr:`clone.util.git.Git.repo` on first use.

:class:`RunnerGit` is GitPython's command wrapper with ``execute`` handing the command GitPython built
to :func:`clone.util.git._run` (the runner: hermetic env, process-group timeout, masked log).
GitPython's own ``execute`` would start from ``os.environ`` and could not drop a secret or a
redirecting ``GIT_*`` variable. :func:`open_repo` keeps GitPython's default object database
(``GitCmdObjectDB``; its pure-Python ``GitDB`` is deprecated upstream and misreads some packs),
whose object reads :class:`RunnerGit` serves with one-shot ``git cat-file`` through the runner
instead of GitPython's long-lived ``cat-file --batch`` processes, which the runner cannot supervise.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import io

import git as gitpython
from git.exc import GitCommandError

from clone.errors import GitError
from clone.util.git import GIT_TIMEOUT_SECONDS, _run


class GitCommandFailed(GitError, GitCommandError):
    """A command GitPython built failed or timed out: a GitError to Clone, a GitCommandError (with
    ``status``) to GitPython's own code, which tells "not an ancestor" (status 1) from a failure."""

    def __init__(self, message: str, *, argv: tuple[str, ...] = (), returncode: int | None = None,
                 output: str = "", timed_out: bool = False) -> None:
        GitError.__init__(self, message, argv=argv, returncode=returncode, output=output, timed_out=timed_out)
        self.command, self.status, self.stderr, self.stdout = list(argv), returncode, output, ""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RunnerGit(gitpython.Git):
    """GitPython's command wrapper, running each command through the one runner (see module doc)."""

    env: Mapping[str, str] = {}
    auth = None  # the repository's clone.util.git_auth.GitAuth, if any

    def execute(self, command, *, istream=None, with_extended_output: bool = False,  # type: ignore[override]
                with_exceptions: bool = True, kill_after_timeout: float | None = None,
                strip_newline_in_stdout: bool = True, as_process: bool = False, output_stream=None,
                **_ignored):
        if as_process or output_stream is not None:
            raise GitError(f"git {' '.join(map(str, command[1:3]))}: streaming GitPython commands are not "
                           "run by Clone (use Git.run)")
        stdin = istream if isinstance(istream, str | None) else istream.read()
        stdin = stdin.decode() if isinstance(stdin, bytes) else stdin
        argv = [str(part) for part in command]
        result = _run(argv[1:], Path(self._working_dir or "."), self.env, kill_after_timeout or GIT_TIMEOUT_SECONDS,
                      stdin, check=with_exceptions, error_class=GitCommandFailed, auth=self.auth)
        stdout = result.stdout if strip_newline_in_stdout else result.stdout + "\n"
        return (result.returncode, stdout, result.stderr) if with_extended_output else stdout


    # -- object reads for GitCmdObjectDB (GitPython would keep `git cat-file --batch` processes) --------
    def get_object_header(self, ref: str | bytes) -> tuple[bytes, bytes, int]:
        ref = ref.decode() if isinstance(ref, bytes) else ref
        line = self.execute(["git", "cat-file", "--batch-check"], istream=f"{ref}\n").strip()
        tokens = line.split()
        if len(tokens) != 3 or not tokens[2].isdigit():
            raise ValueError(f"SHA {ref} could not be resolved, git returned: {line!r}")
        return tokens[0].encode(), tokens[1].encode(), int(tokens[2])

    def get_object_data(self, ref: str | bytes) -> tuple[bytes, bytes, int, bytes]:
        hexsha, typename, size = self.get_object_header(ref)
        if typename not in (b"commit", b"tag"):  # the runner reads text; trees and blobs are binary
            raise GitError(f"git object {ref} is a {typename.decode()}: Clone reads only commits and tags "
                           "through GitPython (use Git.run for others)")
        text = self.execute(["git", "cat-file", typename.decode(), hexsha.decode()], strip_newline_in_stdout=False)
        return hexsha, typename, size, text.encode()

    def stream_object_data(self, ref: str | bytes):
        hexsha, typename, size, data = self.get_object_data(ref)
        return hexsha, typename, size, io.BytesIO(data)


class _Repo(gitpython.Repo):
    GitCommandWrapperType = RunnerGit


def open_repo(path: Path, env: Mapping[str, str], auth=None) -> gitpython.Repo:
    """``path`` as a GitPython Repo whose commands run through the runner with ``env``."""
    try:
        repo = _Repo(path)
    except (gitpython.InvalidGitRepositoryError, gitpython.NoSuchPathError) as e:
        raise GitError(f"{path} is not a git repository ({type(e).__name__})") from e
    repo.git.env = env
    repo.git.auth = auth
    repo.git._working_dir = str(path)  # commands run here, whatever the Repo worked out
    return repo
