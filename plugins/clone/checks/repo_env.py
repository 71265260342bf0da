"""Where a repo's own environment lives (``<workspace>/envs/<name>``) and how a command is put inside it.

Setup (:mod:`clone.checks.repo_setup`) fills it; the checks (:mod:`clone.checks.verify`) run in it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

PRE_COMMIT_CONFIG = ".pre-commit-config.yaml"


def pre_commit_env(env_root: Path) -> tuple[tuple[str, str], ...]:
    """pre-commit keeps its hook environments in the repo's env, for setup and the lint check alike."""
    return (("PRE_COMMIT_HOME", str(Path(env_root) / "pre-commit")),)


def env_root_for(workdir: Path) -> Path:
    """``<workspace>/envs/<name>`` for the clone ``<workspace>/repos/<name>`` (see clone.work.workspace)."""
    workdir = Path(workdir)
    return workdir.parent.parent / "envs" / workdir.name


@dataclasses.dataclass(frozen=True)
class RepoEnv:
    """Where a repo's environment is; :meth:`apply` puts it in front of a command's environment."""

    root: Path
    workdir: Path

    @classmethod
    def of(cls, workdir: Path) -> RepoEnv:
        return cls(env_root_for(Path(workdir)), Path(workdir))

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    def path_prefix(self) -> tuple[str, ...]:
        dirs = (self.venv / "bin", self.workdir / "node_modules" / ".bin")
        return tuple(str(d) for d in dirs if d.is_dir())

    def apply(self, env: Mapping[str, str]) -> dict[str, str]:
        """``env`` with the venv's bin and node_modules/.bin first on PATH and the venv active."""
        out = dict(env)
        prefix = self.path_prefix() or (str(self.venv / "bin"),)
        out["PATH"] = os.pathsep.join((*prefix, out.get("PATH", os.defpath)))
        out["VIRTUAL_ENV"] = str(self.venv)
        out["UV_PROJECT_ENVIRONMENT"] = str(self.venv)  # `uv sync`/`uv run` use this venv, not ./.venv
        out.update(pre_commit_env(self.root))
        out.pop("PYTHONHOME", None)
        return out
