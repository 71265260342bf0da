"""Clone's error hierarchy.

Every error says what went wrong, where (file, entry, repo) and, when it can, what to do.
"""

from __future__ import annotations


class CloneError(Exception):
    """Base class for every error Clone raises on purpose."""


class ConfigError(CloneError):
    """A setting, a YAML file or a DAG-run parameter is invalid."""


class CommandError(CloneError):
    """A subprocess failed or timed out."""

    def __init__(self, message: str, *, argv: tuple[str, ...] = (), returncode: int | None = None,
                 output: str = "", timed_out: bool = False) -> None:
        super().__init__(message)
        self.argv = argv
        self.returncode = returncode
        self.output = output
        self.timed_out = timed_out


class GitError(CommandError):
    """A git command failed."""


class PushConflict(GitError):
    """The remote branch moved and our commits do not rebase cleanly on it."""


class AgentError(CloneError):
    """The coding agent crashed, timed out or reported a failed turn."""


class SandboxUnavailable(CloneError):
    """CLONE_SANDBOX=required and bubblewrap cannot build the sandbox on this machine."""


class GitHubError(CloneError):
    """The GitHub API answered something we cannot use."""


class CIFailed(CloneError):
    """CI is still red for a commit we pushed."""
