"""Shared fixtures: isolated Clone settings, real repos, the scripted agent."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTED_AGENT = Path(__file__).with_name("scripted_agent.py")

# The bash version's knob names Clone reads; every CLONE_* variable is cleared too, so a developer's
# shell cannot leak into tests (CLONE_TEST_CACHE, the tests' own download cache, is kept).
BASH_KNOBS = ("MODEL", "PARALLEL_REPOS", "TASKS_PER_REPO", "MAX_CYCLES", "MAX_HOURS", "IDEA_BOOTSTRAP_ENABLED",
              "PROJECT_MEMORY_MAX_LINES", "CI_AUTOFIX_ENABLED", "PROMPTS_FILE", "CORE_PROMPT_FILE", "CODEX_SANDBOX")


@pytest.fixture
def clone_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Point every Clone path knob into ``tmp_path`` and use the scripted agent."""
    for name in [*BASH_KNOBS, *(k for k in os.environ if k.startswith("CLONE_") and k != "CLONE_TEST_CACHE")]:
        monkeypatch.delenv(name, raising=False)
    paths = {
        "code": tmp_path / "code",
        "repos_file": tmp_path / "repos.yaml",
        "ideas_file": tmp_path / "ideas.yaml",
        "workspace": tmp_path / "workspace",
        "plan": tmp_path / "agent-io" / "agent_plan.json",
        "agent_log": tmp_path / "agent-io" / "agent_log.jsonl",
    }
    paths["code"].mkdir()
    # The scripted agent's plan and log are the one place outside its work tree it may write (the sandbox).
    paths["plan"].parent.mkdir()
    monkeypatch.setenv("CLONE_SANDBOX_WRITABLE", str(paths["plan"].parent))
    monkeypatch.setenv("CLONE_CODE_ROOT", str(paths["code"]))
    monkeypatch.setenv("CLONE_REPOS_FILE", str(paths["repos_file"]))
    monkeypatch.setenv("CLONE_IDEAS_FILE", str(paths["ideas_file"]))
    monkeypatch.setenv("CLONE_WORKSPACE", str(paths["workspace"]))
    # Most of the suite's repos have no checks, which CLONE_VERIFY_POLICY=block holds (no CI judges them);
    # the tests of verification itself (test_pass_rules, test_verify_ecosystems) set block.
    monkeypatch.setenv("CLONE_VERIFY_POLICY", "warn")
    # The suite's CI polls every second or faster; the 30 s settle period before a green verdict would
    # dominate every chain. Short, but still on: every CI watch of the suite settles.
    monkeypatch.setenv("CLONE_CI_SETTLE_SECONDS", "1")
    monkeypatch.setenv("CLONE_AGENT", "command")
    monkeypatch.setenv("CLONE_AGENT_COMMAND", f"{sys.executable} {SCRIPTED_AGENT}")
    monkeypatch.setenv("CLONE_AGENT_ENV_PASSTHROUGH", "SCRIPTED_AGENT_PLAN,SCRIPTED_AGENT_LOG")
    monkeypatch.setenv("SCRIPTED_AGENT_PLAN", str(paths["plan"]))
    monkeypatch.setenv("SCRIPTED_AGENT_LOG", str(paths["agent_log"]))
    paths["plan"].write_text("{}")
    return paths


def write_plan(path: Path, plan: dict) -> None:
    path.write_text(json.dumps(plan))


def agent_calls(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session", autouse=True)
def bubblewrap() -> None:
    """Every agent and check runs in Clone's bubblewrap sandbox: install Debian's ``bubblewrap`` when it is
    missing and the tests run as root (as tests/browser.py does for chromium); otherwise the sandbox tests
    fail with what to do (and the rest run with the SANDBOX UNAVAILABLE warning)."""
    import shutil
    import subprocess

    if shutil.which("bwrap") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (("update",), ("install", "-y", "--no-install-recommends", "bubblewrap")):
        subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=300", *args], env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=300, check=False)
