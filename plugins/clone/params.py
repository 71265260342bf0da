"""The typed trigger form of ``clone_fleet`` and how its values override the settings.

Defaults come from the environment (the form shows them); Airflow validates a run's conf
against the JSON schema of each Param and rejects bad conf with the schema's message.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from airflow.sdk import Param

from clone.errors import ConfigError
from clone.settings import AGENT_KINDS, PUSH_MODES, Settings, load_settings


def parse_time_settings() -> Settings:
    """Settings from the environment, or the built-in defaults when the environment is invalid
    (parsing must not fail; the task that loads the settings reports the bad value)."""
    try:
        return load_settings()
    except ConfigError:
        return load_settings({"HOME": os.environ.get("HOME", "/"), "AIRFLOW_HOME": os.environ.get("AIRFLOW_HOME", "")})


def fleet_params() -> dict[str, Param]:
    """The Params of clone_fleet (built when the DAG file is parsed)."""
    s = parse_time_settings()
    return {
        "repos": Param([], type="array", items={"type": "string", "pattern": r"^[A-Za-z0-9._-]{1,100}$"},
                       title="Repos", description="Names from repos.yaml to work on; empty = every enabled repo."),
        "model": Param(s.model, type="string", title="Model", description="MODEL: empty = the agent's default."),
        "tasks_per_repo": Param(s.tasks_per_repo, type="integer", minimum=1, title="Tasks per repo",
                                description="TASKS_PER_REPO (a repo's own tasks_per_repo still wins)."),
        "agent": Param(s.agent, type="string", enum=list(AGENT_KINDS), title="Agent", description="CLONE_AGENT."),
        "push_mode": Param(s.push_mode, type="string", enum=list(PUSH_MODES), title="Push mode",
                           description="CLONE_PUSH_MODE: direct (push to the branch, then CI), gated (work "
                                       "branch, fast-forward when green) or pr (a pull request). A repo's "
                                       "own push_mode in repos.yaml wins."),
        "autofix": Param(s.ci_autofix_enabled, type="boolean", title="CI autofix",
                         description="CI_AUTOFIX_ENABLED: let the agent fix a red CI."),
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Agents run and commit in their workspaces; nothing is pushed."),
        "cycles": Param(s.max_cycles, type="integer", minimum=1, title="Cycles",
                        description="MAX_CYCLES: run this many cycles back to back, each its own DAG run."),
        "max_hours": Param(s.max_hours, type="number", minimum=0, title="Max hours",
                           description="MAX_HOURS: no new pass starts after this many hours (0 = no limit)."),
    }


def apply(settings: Settings, params: Mapping[str, Any] | None) -> Settings:
    """``settings`` overridden by a run's params (which Airflow has already validated)."""
    params = params or {}
    mapping = {"model": "model", "tasks_per_repo": "tasks_per_repo", "agent": "agent",
               "autofix": "ci_autofix_enabled", "dry_run": "dry_run", "push_mode": "push_mode", "cycles": "max_cycles",
               "max_hours": "max_hours"}
    changes = {field: params[key] for key, field in mapping.items() if params.get(key) is not None}
    updated = dataclasses.replace(settings, **changes)
    if updated.agent == "command" and not updated.agent_command:
        raise ConfigError("agent=command needs CLONE_AGENT_COMMAND (the agent's command line)")
    return updated


def run_settings(context: Mapping[str, Any]) -> Settings:
    """The settings for a task of this run: environment, then the run's params."""
    return apply(load_settings(), context.get("params"))
