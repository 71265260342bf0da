"""The sandbox switch: where bwrap cannot run, Clone says so loudly (auto) or refuses (required); never silent."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from clone.agents.base import AgentRun
from clone.agents.command import CommandAgent
from clone.errors import ConfigError, SandboxUnavailable
from clone.util import sandbox


@pytest.fixture
def broken_bwrap(tmp_path, monkeypatch):
    """A bwrap that fails the way it does on a kernel without unprivileged user namespaces."""
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "bwrap").write_text("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace, likely because "
                                "the kernel does not allow non-privileged user namespaces.' >&2\nexit 1\n")
    (fake / "bwrap").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:/usr/bin:/bin")
    sandbox.probe.cache_clear()
    yield
    sandbox.probe.cache_clear()


def _agent_run(tmp_path: Path) -> tuple[CommandAgent, AgentRun]:
    work = tmp_path / "ws" / "repos" / "app"
    work.mkdir(parents=True)
    agent = CommandAgent(command=f"{sys.executable} -c \"print('agent ran')\"", timeout_seconds=60)
    return agent, AgentRun(workdir=work, prompt="p", repo_name="app")


def test_auto_runs_unsandboxed_with_a_loud_warning(broken_bwrap, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("CLONE_SANDBOX", "auto")
    assert "cannot create namespaces" in sandbox.probe() and "unprivileged_userns_clone" in sandbox.probe()
    agent, run = _agent_run(tmp_path)
    with caplog.at_level(logging.WARNING, logger="clone.sandbox"):
        assert agent.run(run).ok
    assert any("SANDBOX UNAVAILABLE, running the agent UNSANDBOXED" in r.getMessage() for r in caplog.records)


def test_required_refuses_to_run(broken_bwrap, tmp_path, monkeypatch):
    monkeypatch.setenv("CLONE_SANDBOX", "required")
    agent, run = _agent_run(tmp_path)
    with pytest.raises(SandboxUnavailable, match="CLONE_SANDBOX=required but the sandbox is unavailable: bwrap "
                                                 "cannot create namespaces"):
        agent.run(run)


def test_off_warns_on_every_run(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("CLONE_SANDBOX", "off")
    argv, _ = sandbox.wrap(["true"], {"PATH": "/usr/bin"}, purpose="check", workdir=tmp_path)
    assert argv == ["true"]
    assert "SANDBOX OFF" in caplog.text


@pytest.mark.parametrize(("name", "value", "message"), [
    ("CLONE_SANDBOX", "sometimes", "CLONE_SANDBOX must be one of auto, required, off, got 'sometimes'"),
    ("CLONE_SANDBOX_AGENT_NETWORK", "loopback", "CLONE_SANDBOX_AGENT_NETWORK must be one of host, none, model"),
    ("CLONE_SANDBOX_WRITABLE", "relative/dir", "CLONE_SANDBOX_WRITABLE: every path must be absolute"),
])
def test_bad_settings_are_named(tmp_path, monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        sandbox.wrap(["true"], {"PATH": "/usr/bin"}, purpose="agent", workdir=tmp_path,
                     network=sandbox.agent_network())


def test_paths_in_passthrough_variables_are_handed_over_but_never_private_ones(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".git-credentials").write_text("https://x:secret@github.com\n")
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AGENT_LOG", str(outbox / "log.txt"))  # does not exist yet: its folder is handed over
    monkeypatch.setenv("AGENT_CREDS", str(home / ".git-credentials"))  # inside HOME: never shown
    script = ("import os, pathlib; seen = pathlib.Path(os.environ['AGENT_CREDS']).exists(); "
              "pathlib.Path(os.environ['AGENT_LOG']).write_text(f'credentials visible: {seen}')")
    work = tmp_path / "ws" / "repos" / "app"
    work.mkdir(parents=True)
    agent = CommandAgent(command=f"{sys.executable} -c \"{script}\"", timeout_seconds=60,
                         passthrough=("AGENT_LOG", "AGENT_CREDS"))
    agent.run(AgentRun(workdir=work, prompt="p", repo_name="app"))
    assert (outbox / "log.txt").read_text() == "credentials visible: False"


def test_a_virtualenv_python_on_path_runs_as_the_agent_command(tmp_path, monkeypatch):
    # As under `make up`: the project venv's bin first on PATH and CLONE_AGENT_COMMAND naming its python, a
    # symlink into the base interpreter. Binding that symlink again inside the already shown venv made bwrap
    # fail ("Can't create file at .../.venv/bin/python") before the agent ran.
    monkeypatch.setenv("CLONE_SANDBOX", "required")
    sandbox.probe.cache_clear()
    assert sandbox.probe() is None, f"the sandbox cannot run here (install bubblewrap; see README): {sandbox.probe()}"
    venv = Path(sys.prefix)
    python = venv / "bin" / "python"
    assert (venv / "pyvenv.cfg").is_file() and python.is_symlink(), "the suite runs from a virtualenv"
    monkeypatch.setenv("PATH", f"{venv / 'bin'}:/usr/bin:/bin")
    work = tmp_path / "ws" / "repos" / "app"
    work.mkdir(parents=True)
    agent = CommandAgent(command=f"{python} -c \"print('agent ran')\"", timeout_seconds=60)
    result = agent.run(AgentRun(workdir=work, prompt="p", repo_name="app"))
    assert result.ok and result.exit_code == 0


def test_each_sandboxed_run_says_so_once_at_info(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("CLONE_SANDBOX", "required")
    if sandbox.probe():
        pytest.skip(f"bwrap cannot run here: {sandbox.probe()}")
    with caplog.at_level(logging.INFO, logger="clone.sandbox"):
        argv, _ = sandbox.wrap(["true"], {"PATH": "/usr/bin"}, purpose="check", workdir=tmp_path)
    assert argv[0] == "bwrap"
    said = [r for r in caplog.records if r.levelno == logging.INFO and r.getMessage().startswith("sandbox:")]
    assert [r.getMessage() for r in said] == ["sandbox: the check runs in bwrap (no network; writable: its workdir)"]


def test_the_agent_log_line_reads_well(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("CLONE_SANDBOX", "off")
    agent, run = _agent_run(tmp_path)
    with caplog.at_level(logging.INFO):
        agent.run(run)
    assert f"agent 'command' (maintenance pass) on app in {run.workdir} (timeout 60s" in caplog.text
    assert "pass pass" not in caplog.text
