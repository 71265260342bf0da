"""Real git repositories for tests: a bare remote and a user checkout, built with the git CLI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_AUTHOR_NAME": "Test User", "GIT_AUTHOR_EMAIL": "user@example.com",
    "GIT_COMMITTER_NAME": "Test User", "GIT_COMMITTER_EMAIL": "user@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run git in ``cwd`` (test helper: raises with output on failure)."""
    result = subprocess.run(["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
                            cwd=cwd, env={**ENV, **(env or {})}, capture_output=True, text=True, timeout=60)
    if result.returncode:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}:\n{result.stdout}\n{result.stderr}")
    return result.stdout.strip()


def make_remote_and_checkout(root: Path, name: str, files: dict[str, str] | None = None,
                             *, date: str | None = None) -> tuple[Path, Path]:
    """A bare remote ``root/remotes/<name>.git`` and a checkout ``root/code/<name>`` with one pushed commit."""
    bare = root / "remotes" / f"{name}.git"
    checkout = root / "code" / name
    bare.mkdir(parents=True)
    git(bare, "init", "--quiet", "--bare", "-b", "main")
    checkout.mkdir(parents=True)
    git(checkout, "init", "--quiet", "-b", "main")
    git(checkout, "remote", "add", "origin", str(bare))
    for rel, text in (files or {"README.md": f"# {name}\n"}).items():
        path = checkout / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(checkout, "add", "-A")
    env = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date} if date else None
    git(checkout, "commit", "--quiet", "-m", "initial", env=env)
    git(checkout, "push", "--quiet", "-u", "origin", "main")
    return checkout, bare


def commit_file(checkout: Path, rel: str, text: str, message: str = "change") -> str:
    path = checkout / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    git(checkout, "add", "-A")
    git(checkout, "commit", "--quiet", "-m", message)
    return git(checkout, "rev-parse", "HEAD")


def log_subjects(repo: Path, ref: str = "main") -> list[str]:
    """Commit subjects of ``ref``, newest first (works on bare repos too)."""
    return git(repo, "log", "--format=%s", ref).splitlines()


def show(repo: Path, ref: str, path: str) -> str | None:
    result = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=repo, env=ENV, capture_output=True,
                            text=True, timeout=60)
    return result.stdout if result.returncode == 0 else None
