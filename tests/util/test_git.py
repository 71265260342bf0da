"""clone.util.git on GitPython: Repo reads, repo.git commands through the runner, on real repos.

What GitPython alone would not give and Git must keep: commands that GitPython builds run with the
hermetic environment (no Airflow secrets, no redirecting GIT_* variables), are killed with their
whole process group at the timeout, and are logged with credentials masked.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from clone.errors import GitError, PushConflict
from clone.util._gitpython import GitCommandFailed
from clone.util.git import Git, Identity
from tests.repos import git, make_remote_and_checkout

BOT = Identity("clone-bot", "bot@clone.invalid")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    checkout, _ = make_remote_and_checkout(tmp_path, "widget")
    return checkout


def test_reads_match_git_itself(checkout: Path) -> None:
    repo = Git(checkout, BOT)
    head = git(checkout, "rev-parse", "HEAD")
    assert repo.head() == head
    assert repo.rev("HEAD") == repo.rev("refs/heads/main") == repo.rev(head[:12]) == head
    assert repo.rev("origin/main") == git(checkout, "rev-parse", "origin/main")
    assert repo.rev("no-such-branch") is None and repo.rev("0" * 40) is None and repo.rev("HEAD~5") is None
    assert repo.remote_url("origin") == git(checkout, "remote", "get-url", "origin")
    assert repo.remote_url("upstream") is None
    assert repo.remote_default_branch("origin") == "main"


def test_commits_and_ancestry(checkout: Path) -> None:
    repo = Git(checkout, BOT)
    base = repo.head()
    assert repo.commit_all("nothing") is None
    (checkout / "new.txt").write_text("x\n")
    sha = repo.commit_all("add new.txt\n\nbody")
    assert sha == repo.head() != base
    assert git(checkout, "log", "-1", "--format=%an <%ae>|%cn|%B", sha).startswith(
        "clone-bot <bot@clone.invalid>|clone-bot|add new.txt\n\nbody")
    assert repo.changed_files(base) == ["new.txt"]
    assert repo.is_ancestor(base, sha) and not repo.is_ancestor(sha, base)
    assert repo.is_ancestor(base, base)
    assert not repo.is_ancestor("f" * 40, sha)  # unknown: False, as before, not an error


def test_head_of_an_empty_repo_is_a_git_error(tmp_path: Path) -> None:
    repo = Git.init(tmp_path / "empty", BOT)
    with pytest.raises(GitError, match="no commit"):
        repo.head()
    assert repo.rev("HEAD") is None
    with pytest.raises(GitError, match="not a git repository"):
        Git(tmp_path / "missing").repo


def test_failed_commands_are_git_errors_with_the_exit_code(checkout: Path) -> None:
    with pytest.raises(GitError) as caught:
        Git(checkout).fetch("no-such-remote")
    assert isinstance(caught.value, GitCommandFailed) and caught.value.returncode == 128
    assert "no-such-remote" in str(caught.value)


def test_a_rebase_conflict_aborts_and_raises_push_conflict(checkout: Path) -> None:
    repo = Git(checkout, BOT)
    base = repo.head()
    (checkout / "README.md").write_text("ours\n")
    repo.commit_all("ours")
    git(checkout, "checkout", "-q", "-b", "theirs", base)
    (checkout / "README.md").write_text("theirs\n")
    Git(checkout, BOT).commit_all("theirs")
    with pytest.raises(PushConflict, match="conflicts in: README.md"):
        repo.rebase("main")
    assert not (checkout / ".git" / "rebase-merge").exists()  # aborted: the work tree is usable


def test_gitpython_commands_get_the_hermetic_environment(checkout: Path, monkeypatch) -> None:
    """A secret and a redirecting GIT_ variable in the worker's env reach neither git nor its children."""
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "fernet-secret")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    monkeypatch.setenv("GIT_INDEX_FILE", str(checkout / "elsewhere-index"))
    repo = Git(checkout, BOT).repo
    env = repo.git.execute(["git", "-c", "alias.env=!env", "env"])
    assert "fernet-secret" not in env and "ghp_secret" not in env and "GIT_INDEX_FILE" not in env
    assert "GIT_AUTHOR_NAME=clone-bot" in env and "GIT_TERMINAL_PROMPT=0" in env
    (checkout / "staged.txt").write_text("s\n")
    Git(checkout).stage("staged.txt")
    assert not (checkout / "elsewhere-index").exists()
    assert "staged.txt" in git(checkout, "diff", "--cached", "--name-only")


def test_a_redirecting_variable_gitpython_itself_would_follow_is_refused(checkout: Path, monkeypatch) -> None:
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", "/tmp/elsewhere")
    with pytest.raises(GitError, match="GIT_OBJECT_DIRECTORY is set in the worker's environment"):
        Git(checkout).head()


def test_kill_after_timeout_kills_the_process_group(checkout: Path) -> None:
    repo = Git(checkout).repo
    started = time.monotonic()
    with pytest.raises(GitError) as caught:
        repo.git.execute(["git", "-c", "alias.slow=!sleep 30 & sleep 30", "slow"], kill_after_timeout=1)
    assert caught.value.timed_out and time.monotonic() - started < 15


def test_commands_are_logged_with_credentials_masked(checkout: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="clone.util.git")
    with pytest.raises(GitError):
        Git(checkout).fetch("https://user:hunter2@127.0.0.1:9/x.git")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    # "--" before the URL (sandbox: a remote or branch named "-..." is never read as an option)
    assert "$ git fetch --quiet --prune --no-tags -- https://***@127.0.0.1:9/x.git" in logged
    assert "hunter2" not in logged
