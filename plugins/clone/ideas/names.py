"""An idea's repo_name: derived from its title when missing, and checked to be one safe directory (and
GitHub repository) name."""

from __future__ import annotations

import re

from clone.ideas.ideas_file import Idea

NAME_MAX = 100  # GitHub's limit for a repository name
_NAME_CHARS = re.compile(r"[A-Za-z0-9._-]+")


def repo_name_problem(name: str) -> str | None:
    """Why ``name`` is not a safe single directory (and GitHub repository) name, or None."""
    if not name.strip():
        return "it is empty"
    if "/" in name or "\\" in name or "\0" in name:
        return "it contains a path separator"
    if name in (".", ".."):
        return "it is '.' or '..'"
    if len(name) > NAME_MAX:
        return f"it is {len(name)} characters long (at most {NAME_MAX})"
    if not _NAME_CHARS.fullmatch(name):
        return "it may only contain letters, digits, '.', '_' and '-'"
    if name.startswith("-"):
        return "it starts with '-' (it would read as a command-line option)"
    if name.startswith("."):
        return "it starts with '.' (a hidden directory)"
    if name.lower().endswith(".git"):
        return "it ends with '.git'"
    return None


def derive_repo_name(idea: Idea) -> str:
    """The default repo_name: the title (else the id) in lower case, runs of other characters as '-'."""
    slug = re.sub(r"[^a-z0-9]+", "-", (idea.title or idea.id).lower()).strip("-")
    return slug[:60].rstrip("-")
