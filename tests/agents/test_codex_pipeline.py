"""The real Codex CLI (npm @openai/codex) driven by clone_fleet against a local Responses API endpoint."""

from __future__ import annotations

import json
import os

import pytest

from tests.airflow_home import airflow, migrate
from tests.fakes.codex_cli import install_codex, write_codex_home
from tests.fakes.model_server import FakeModelServer, Message, ShellCall, Usage
from tests.repos import git, log_subjects, make_remote_and_checkout, show

pytestmark = pytest.mark.slow


def test_codex_pass_commits_pushes_and_logs_usage(tmp_path, clone_env):
    codex = install_codex()
    checkout, bare = make_remote_and_checkout(tmp_path, "svc", {"README.md": "# svc\n"})
    clone_env["repos_file"].write_text(f"repos:\n  - path: {checkout}\n")
    codex_home = tmp_path / "codex-home"
    home = tmp_path / "airflow"
    env = migrate(home)
    script = [ShellCall("printf 'made by codex\\n' > CODEX_WAS_HERE.txt"),
              Message("Outcome: done\nChanged: added CODEX_WAS_HERE.txt")]
    with FakeModelServer(script=script, usage=Usage(input_tokens=1200, output_tokens=345)) as model:
        write_codex_home(codex_home, model.base_url, env_key="FAKE_MODEL_KEY")
        env.update({k: v for k, v in os.environ.items() if k.startswith("CLONE_")})
        env.update({
            "CLONE_AGENT": "codex",
            "MODEL": "fake-model",
            "CODEX_HOME": str(codex_home),
            "FAKE_MODEL_KEY": "not-a-real-key",
            "CLONE_AGENT_ENV_PASSTHROUGH": "FAKE_MODEL_KEY",
            "PATH": f"{codex.parent}{os.pathsep}{os.environ['PATH']}",
            "AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps({"conn_type": "github", "password": "unused"}),
        })
        result = airflow(env, "dags", "test", "clone_fleet", timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert model.requests, "codex never called the model endpoint"
    # The change codex's shell command made was committed by the orchestrator and pushed.
    assert log_subjects(bare)[:2] == ["clone: maintenance pass on svc", "initial"]
    assert show(bare, "main", "CODEX_WAS_HERE.txt") == "made by codex\n"
    body = git(bare, "log", "-1", "--format=%B", "main")
    assert "added CODEX_WAS_HERE.txt" in body  # the agent's last message is the commit body
    # Token usage was parsed from codex's JSON events and logged.
    logs = output + "".join(p.read_text(errors="replace") for p in (home / "logs").rglob("*") if p.is_file())
    sent_in = sum(u.input_tokens for u in model.reported_usage)
    sent_out = sum(u.output_tokens for u in model.reported_usage)
    assert sent_in >= 1200 and sent_out >= 345
    assert f"agent codex token usage: cached_input_tokens=0, input_tokens={sent_in}, " \
           f"output_tokens={sent_out}, reasoning_output_tokens=0, total_tokens={sent_in + sent_out}" in logs
    assert "[codex] message: Outcome: done" in logs
