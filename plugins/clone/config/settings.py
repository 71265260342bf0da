"""Typed, validated settings, resolved once per task from the environment.

Every knob is documented in the README with its default. Nothing here is read at import
time: call :func:`load_settings` inside a task (or the DAG factory, for the few knobs that
shape the DAG itself, such as the schedule).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clone.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[3]
PROMPTS_DIR = PROJECT_ROOT / "include" / "prompts"
TEMPLATES_DIR = PROJECT_ROOT / "include" / "templates"

AGENT_POOL = "clone_agent"
AGENT_KINDS = ("codex", "claude", "command")
VERIFY_POLICIES = ("block", "warn", "off")
GUARD_POLICIES = ("block", "warn")
PUSH_MODES = ("direct", "gated", "pr")
CODEX_SANDBOXES = ("read-only", "workspace-write", "danger-full-access", "bypass")
GIT_PROTOCOLS = ("https", "ssh")
_GITHUB_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every knob Clone reads, with its default. Build it with :func:`load_settings`."""

    code_root: Path
    repos_file: Path
    ideas_file: Path
    workspace: Path
    active_days: int = 14
    discover_local: bool = True
    discover_github: tuple[str, ...] = ()
    schedule: str | None = "0 */6 * * *"

    agent: str = "codex"
    agent_command: str = ""
    agent_timeout_minutes: float = 60
    agent_env_passthrough: tuple[str, ...] = ()
    codex_sandbox: str = "workspace-write"

    model: str = ""
    parallel_repos: int = 3
    tasks_per_repo: int = 10
    max_cycles: int = 1
    max_hours: float = 0
    idea_bootstrap_enabled: bool = True
    project_memory_max_lines: int = 500
    ci_autofix_enabled: bool = True
    prompts_file: Path = PROMPTS_DIR / "repo_steering.md"
    core_prompt_file: Path = PROMPTS_DIR / "autonomous_core_prompt.md"

    ci_poll_seconds: float = 30
    ci_timeout_minutes: float = 60
    ci_start_grace_seconds: float = 300
    ci_settle_seconds: float = 30
    ci_log_max_lines: int = 200
    autofix_max_attempts: int = 2
    ci_rerun_failed: bool = True
    defer_settle_seconds: float = 30
    task_retries: int = 2
    lease_heartbeat_seconds: float = 30

    max_tokens_per_pass: int = 0
    max_tokens_per_run: int = 0
    stall_passes: int = 3
    verify_policy: str = "block"
    verify_timeout_minutes: float = 20
    setup_timeout_minutes: float = 20
    guard_policy: str = "block"
    protected_paths: tuple[str, ...] = ()

    dry_run: bool = False
    push_mode: str = "direct"
    pr_automerge: bool = False

    git_author_name: str = "Clone Bot"
    git_author_email: str = "clone-bot@users.noreply.github.com"
    github_conn_id: str = "github_default"
    github_owner: str = ""
    git_protocol: str = "https"
    ideas_schedule: str | None = "@hourly"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (paths as strings), for logs and XCom."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            out[field.name] = str(value) if isinstance(value, Path) else value
        return out


def schedule_from_env(variable: str, default: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """A DAG's schedule from ``variable`` (cron or preset; ``none`` = manual runs only), read at parse time."""
    value = (os.environ if env is None else env).get(variable, "").strip()
    if not value:
        return default
    return None if value.lower() in ("none", "null") else value


def _airflow_home(env: Mapping[str, str]) -> Path:
    return Path(env.get("AIRFLOW_HOME") or Path.home() / "airflow").expanduser()


class _Reader:
    """Parses environment values, naming the variable in every error."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        return None if value is None else value.strip()

    def text(self, name: str, default: str) -> str:
        value = self.raw(name)
        return default if value is None else value

    def path(self, name: str, default: Path) -> Path:
        value = self.raw(name)
        return (Path(value).expanduser() if value else default).resolve()

    def integer(self, name: str, default: int, *, minimum: int = 0) -> int:
        value = self.raw(name)
        if not value:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{name}={value!r} is not a whole number") from None
        if number < minimum:
            raise ConfigError(f"{name}={value!r} must be at least {minimum}")
        return number

    def number(self, name: str, default: float, *, minimum: float = 0) -> float:
        value = self.raw(name)
        if not value:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{name}={value!r} is not a number") from None
        if number < minimum:
            raise ConfigError(f"{name}={value!r} must be at least {minimum}")
        return number

    def flag(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ConfigError(f"{name}={value!r} must be 1 or 0 (or true/false)")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.raw(name) or default
        if value not in choices:
            raise ConfigError(f"{name}={value!r} must be one of: {', '.join(choices)}")
        return value

    def names(self, name: str) -> tuple[str, ...]:
        value = self.raw(name) or ""
        return tuple(part.strip() for part in value.split(",") if part.strip())


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Resolve every knob from ``env`` (default: ``os.environ``), validating each one."""
    env = os.environ if env is None else env
    read = _Reader(env)
    home = _airflow_home(env)
    schedule = read.text("CLONE_SCHEDULE", Settings.schedule or "")
    ideas_schedule = read.text("CLONE_IDEAS_SCHEDULE", Settings.ideas_schedule or "")
    settings = Settings(
        code_root=read.path("CLONE_CODE_ROOT", Path.home() / "code"),
        repos_file=read.path("CLONE_REPOS_FILE", PROJECT_ROOT / "repos.yaml"),
        ideas_file=read.path("CLONE_IDEAS_FILE", PROJECT_ROOT / "ideas.yaml"),
        workspace=read.path("CLONE_WORKSPACE", home / "clone-workspace"),
        active_days=read.integer("CLONE_ACTIVE_DAYS", 14, minimum=1),
        discover_local=read.flag("CLONE_DISCOVER_LOCAL", True),
        discover_github=read.names("CLONE_DISCOVER_GITHUB"),
        schedule=None if schedule.lower() in ("", "none", "null") else schedule,
        agent=read.choice("CLONE_AGENT", "codex", AGENT_KINDS),
        agent_command=read.text("CLONE_AGENT_COMMAND", ""),
        agent_timeout_minutes=read.number("CLONE_AGENT_TIMEOUT_MINUTES", 60, minimum=0.01),
        agent_env_passthrough=read.names("CLONE_AGENT_ENV_PASSTHROUGH"),
        codex_sandbox=read.choice("CODEX_SANDBOX", "workspace-write", CODEX_SANDBOXES),
        model=read.text("MODEL", ""),
        parallel_repos=read.integer("PARALLEL_REPOS", 3, minimum=1),
        tasks_per_repo=read.integer("TASKS_PER_REPO", 10, minimum=1),
        max_cycles=read.integer("MAX_CYCLES", 1, minimum=1),
        max_hours=read.number("MAX_HOURS", 0),
        idea_bootstrap_enabled=read.flag("IDEA_BOOTSTRAP_ENABLED", True),
        project_memory_max_lines=read.integer("PROJECT_MEMORY_MAX_LINES", 500, minimum=50),
        ci_autofix_enabled=read.flag("CI_AUTOFIX_ENABLED", True),
        prompts_file=read.path("PROMPTS_FILE", PROMPTS_DIR / "repo_steering.md"),
        core_prompt_file=read.path("CORE_PROMPT_FILE", PROMPTS_DIR / "autonomous_core_prompt.md"),
        ci_poll_seconds=read.number("CLONE_CI_POLL_SECONDS", 30, minimum=0.05),
        ci_timeout_minutes=read.number("CLONE_CI_TIMEOUT_MINUTES", 60, minimum=0.01),
        ci_start_grace_seconds=read.number("CLONE_CI_START_GRACE_SECONDS", 300),
        ci_settle_seconds=read.number("CLONE_CI_SETTLE_SECONDS", 30),
        ci_log_max_lines=read.integer("CLONE_CI_LOG_MAX_LINES", 200, minimum=1),
        autofix_max_attempts=read.integer("CLONE_AUTOFIX_MAX_ATTEMPTS", 2),
        ci_rerun_failed=read.flag("CLONE_CI_RERUN_FAILED", True),
        defer_settle_seconds=read.number("CLONE_DEFER_SETTLE_SECONDS", 30),
        task_retries=read.integer("CLONE_TASK_RETRIES", 2),
        lease_heartbeat_seconds=read.number("CLONE_LEASE_HEARTBEAT_SECONDS", 30),
        push_mode=read.choice("CLONE_PUSH_MODE", "direct", PUSH_MODES),
        pr_automerge=read.flag("CLONE_PR_AUTOMERGE", False),
        max_tokens_per_pass=read.integer("CLONE_MAX_TOKENS_PER_PASS", 0),
        max_tokens_per_run=read.integer("CLONE_MAX_TOKENS_PER_RUN", 0),
        stall_passes=read.integer("CLONE_STALL_PASSES", 3),
        verify_policy=read.choice("CLONE_VERIFY_POLICY", "block", VERIFY_POLICIES),
        verify_timeout_minutes=read.number("CLONE_VERIFY_TIMEOUT_MINUTES", 20, minimum=0.01),
        setup_timeout_minutes=read.number("CLONE_SETUP_TIMEOUT_MINUTES", 20, minimum=0.01),
        guard_policy=read.choice("CLONE_GUARD_POLICY", "block", GUARD_POLICIES),
        protected_paths=read.names("CLONE_PROTECTED_PATHS"),
        git_author_name=read.text("CLONE_GIT_AUTHOR_NAME", "") or Settings.git_author_name,
        git_author_email=read.text("CLONE_GIT_AUTHOR_EMAIL", "") or Settings.git_author_email,
        github_conn_id=read.text("CLONE_GITHUB_CONN_ID", "") or Settings.github_conn_id,
        github_owner=read.text("CLONE_GITHUB_OWNER", ""),
        git_protocol=read.choice("CLONE_GIT_PROTOCOL", "https", GIT_PROTOCOLS),
        ideas_schedule=None if ideas_schedule.lower() in ("", "none", "null") else ideas_schedule,
    )
    if settings.github_owner and not _GITHUB_LOGIN.match(settings.github_owner):
        raise ConfigError(f"CLONE_GITHUB_OWNER={settings.github_owner!r} is not a GitHub organisation name "
                          "(letters, digits and '-', at most 39)")
    bad = [owner for owner in settings.discover_github if not _GITHUB_LOGIN.match(owner)]
    if bad:
        raise ConfigError(f"CLONE_DISCOVER_GITHUB: {', '.join(map(repr, bad))} is not a GitHub organisation "
                          "or user name (letters, digits and '-', at most 39); give owner1,owner2")
    if settings.agent == "command" and not settings.agent_command:
        raise ConfigError("CLONE_AGENT=command needs CLONE_AGENT_COMMAND (the agent's command line)")
    return settings
