"""Settings: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from clone.errors import ConfigError
from clone.config.settings import PROJECT_ROOT, load_settings


def test_defaults(tmp_path):
    s = load_settings({"HOME": str(tmp_path), "AIRFLOW_HOME": str(tmp_path / "af")})
    assert s.repos_file == PROJECT_ROOT / "repos.yaml" and s.ideas_file == PROJECT_ROOT / "ideas.yaml"
    assert s.workspace == (tmp_path / "af" / "clone-workspace").resolve()
    assert (s.active_days, s.schedule, s.agent, s.agent_timeout_minutes, s.codex_sandbox) == (
        14, "0 */6 * * *", "codex", 60, "workspace-write")
    assert (s.parallel_repos, s.tasks_per_repo, s.max_hours, s.project_memory_max_lines) == (3, 10, 0, 500)
    assert s.idea_bootstrap_enabled and s.ci_autofix_enabled
    assert (s.ci_poll_seconds, s.ci_timeout_minutes, s.autofix_max_attempts) == (30, 60, 2)
    assert s.core_prompt_file.name == "autonomous_core_prompt.md" and s.core_prompt_file.exists()
    assert s.prompts_file.name == "repo_steering.md" and s.prompts_file.exists()
    assert s.github_conn_id == "github_default"
    assert s.discover_local and s.discover_github == ()


def test_overrides(tmp_path):
    s = load_settings({
        "CLONE_CODE_ROOT": str(tmp_path), "CLONE_ACTIVE_DAYS": "3", "CLONE_SCHEDULE": "none",
        "CLONE_AGENT": "command", "CLONE_AGENT_COMMAND": "my-agent --fast", "MODEL": "o4",
        "CI_AUTOFIX_ENABLED": "0", "IDEA_BOOTSTRAP_ENABLED": "false", "CLONE_AGENT_ENV_PASSTHROUGH": "A, B,,",
        "CODEX_SANDBOX": "bypass", "CLONE_GIT_AUTHOR_NAME": "Robo",
        "CLONE_DISCOVER_LOCAL": "0", "CLONE_DISCOVER_GITHUB": " acme, octo-cat ,",
    })
    assert not s.discover_local and s.discover_github == ("acme", "octo-cat")
    assert s.code_root == tmp_path and s.active_days == 3 and s.schedule is None
    assert s.agent_command == "my-agent --fast" and s.model == "o4" and s.codex_sandbox == "bypass"
    assert not s.ci_autofix_enabled and not s.idea_bootstrap_enabled
    assert s.agent_env_passthrough == ("A", "B") and s.git_author_name == "Robo"


@pytest.mark.parametrize(("env", "message"), [
    ({"PARALLEL_REPOS": "many"}, "PARALLEL_REPOS='many' is not a whole number"),
    ({"TASKS_PER_REPO": "0"}, "TASKS_PER_REPO='0' must be at least 1"),
    ({"MAX_HOURS": "-1"}, "MAX_HOURS='-1' must be at least 0"),
    ({"CI_AUTOFIX_ENABLED": "maybe"}, "CI_AUTOFIX_ENABLED='maybe' must be 1 or 0"),
    ({"CLONE_AGENT": "gpt"}, "CLONE_AGENT='gpt' must be one of: codex, claude, command"),
    ({"CODEX_SANDBOX": "yolo"}, "CODEX_SANDBOX='yolo' must be one of"),
    ({"CLONE_AGENT": "command"}, "CLONE_AGENT=command needs CLONE_AGENT_COMMAND"),
    ({"CLONE_DISCOVER_GITHUB": "acme,bad/slug"}, "CLONE_DISCOVER_GITHUB: 'bad/slug' is not a GitHub"),
    ({"CLONE_DISCOVER_LOCAL": "sometimes"}, "CLONE_DISCOVER_LOCAL='sometimes' must be 1 or 0"),
])
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_settings(env)


def test_relative_paths_resolve(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings({"CLONE_REPOS_FILE": "fleet.yaml"})
    assert s.repos_file == Path(tmp_path / "fleet.yaml").resolve()


def test_lease_heartbeat_defaults_to_30_s_and_rejects_a_negative_interval(tmp_path):
    env = {"HOME": str(tmp_path), "AIRFLOW_HOME": str(tmp_path / "af")}
    assert load_settings(env).lease_heartbeat_seconds == 30
    assert load_settings({**env, "CLONE_LEASE_HEARTBEAT_SECONDS": "0"}).lease_heartbeat_seconds == 0
    with pytest.raises(ConfigError, match="CLONE_LEASE_HEARTBEAT_SECONDS='-1' must be at least 0"):
        load_settings({**env, "CLONE_LEASE_HEARTBEAT_SECONDS": "-1"})
