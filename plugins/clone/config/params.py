"""The typed trigger form of ``clone_fleet`` and how a run's values override the settings.

Every option defaults to null, "not set for this run": the task then takes the knob from the
worker's environment when it runs (or the built-in default), exactly as a scheduled run does. The
form is built when the DAG file is parsed, in the DAG processor, so it never carries that process's
environment as a value; each field's description names the variable and the built-in default
instead. Airflow validates a run's conf against each Param's JSON schema and rejects bad conf with
the schema's message (HTTP 400 over REST).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from airflow.sdk import Param

from clone.errors import ConfigError
from clone.config.settings import AGENT_KINDS, PUSH_MODES, Settings, load_settings

#: The 3.3 form treats a field whose schema type does not allow null as required, and an empty one
#: as missing (the Trigger button stays disabled), so every type below lists "null".
NULLABLE_STRING = ["null", "string"]


@dataclasses.dataclass(frozen=True)
class Option:
    """One field of the form: the run option ``name`` overrides the setting ``field`` (env ``env``)."""

    name: str
    field: str
    env: str
    title: str
    meaning: str
    schema: dict[str, Any]
    shown_default: str = ""  # how the built-in default reads, when its repr would not do

    @property
    def builtin_default(self) -> str:
        if self.shown_default:
            return self.shown_default
        value = next(f.default for f in dataclasses.fields(Settings) if f.name == self.field)
        return ("on" if value else "off") if isinstance(value, bool) else str(value)

    @property
    def default_label(self) -> str:
        return f"default: {self.env} when the task runs (unset: {self.builtin_default})"

    def param(self) -> Param:
        description = (f"{self.meaning} Empty = {self.env} from the worker's environment when the task runs; "
                       f"built-in default {self.builtin_default}.")
        schema = dict(self.schema)
        if "enum" in schema:  # a dropdown: its empty choice says what applies
            schema["values_display"] = {"null": self.default_label, **schema.get("values_display", {})}
        return Param(None, title=self.title, description=description, **schema)


OPTIONS: tuple[Option, ...] = (
    Option("model", "model", "MODEL", "Model", "The model the agent uses.", {"type": NULLABLE_STRING},
           shown_default="the agent's own default model"),
    Option("tasks_per_repo", "tasks_per_repo", "TASKS_PER_REPO", "Tasks per repo",
           "Backlog items per pass (a repo's own tasks_per_repo in repos.yaml still wins).",
           {"type": ["null", "integer"], "minimum": 1}),
    Option("agent", "agent", "CLONE_AGENT", "Agent", "The agent CLI.",
           {"type": NULLABLE_STRING, "enum": [None, *AGENT_KINDS]}),
    Option("push_mode", "push_mode", "CLONE_PUSH_MODE", "Push mode",
           "direct (push to the branch, then CI), gated (work branch, fast-forward when green) or pr (a pull "
           "request). A repo's own push_mode in repos.yaml still wins.",
           {"type": NULLABLE_STRING, "enum": [None, *PUSH_MODES]}),
    # No "type": the 3.3 form draws a typed boolean as a switch, which cannot show "not set". An
    # untyped enum is a dropdown while the value is null (after a choice it becomes a switch).
    Option("autofix", "ci_autofix_enabled", "CI_AUTOFIX_ENABLED", "CI autofix", "Let the agent fix a red CI.",
           {"enum": [None, True, False], "values_display": {"true": "on", "false": "off"}}),
    Option("cycles", "max_cycles", "MAX_CYCLES", "Cycles",
           "Run this many cycles back to back, each its own DAG run.",
           {"type": ["null", "integer"], "minimum": 1}),
    Option("max_hours", "max_hours", "MAX_HOURS", "Max hours",
           "No new pass starts after this many hours from the first cycle's start (0 = no limit).",
           {"type": ["null", "number"], "minimum": 0}),
)


#: The documented order of the form's fields (and of the README's table).
ORDER = ("repos", "model", "tasks_per_repo", "agent", "push_mode", "autofix", "dry_run", "cycles",
         "max_hours")


def fleet_params() -> dict[str, Param]:
    """The Params of clone_fleet (built when the DAG file is parsed; nothing here reads the environment)."""
    params = {
        "repos": Param(None, type=["null", "array"],
                       items={"type": "string", "pattern": r"^[A-Za-z0-9._-]{1,100}$"}, title="Repos",
                       description="Names from repos.yaml to work on, one a line; "
                                   "empty = every enabled repo."),
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Agents run and commit in their workspaces; nothing is pushed."),
    }
    params.update({option.name: option.param() for option in OPTIONS})
    return {name: params[name] for name in ORDER}


def _is_set(value: Any) -> bool:
    return value is not None and value != ""  # an emptied text field may come back as ""


def apply(settings: Settings, params: Mapping[str, Any] | None) -> Settings:
    """``settings`` overridden by the options a run set (Airflow has already validated them);
    an option left null or empty keeps the setting as resolved from the environment."""
    params = params or {}
    changes = {option.field: params[option.name] for option in OPTIONS if _is_set(params.get(option.name))}
    if params.get("dry_run") is not None:
        changes["dry_run"] = params["dry_run"]
    updated = dataclasses.replace(settings, **changes)
    if updated.agent == "command" and not updated.agent_command:
        raise ConfigError("agent=command needs CLONE_AGENT_COMMAND (the agent's command line)")
    return updated


def parse_time_settings() -> Settings:
    """Settings as the DAG processor sees them, for what must be fixed when the DAG is built (task
    timeouts), or the built-in defaults when its environment is invalid (parsing must not fail; the
    task that loads the settings reports the bad value). Never used as a run's values."""
    try:
        return load_settings()
    except ConfigError:
        return load_settings({"HOME": os.environ.get("HOME", "/"), "AIRFLOW_HOME": os.environ.get("AIRFLOW_HOME", "")})


def run_settings(context: Mapping[str, Any]) -> Settings:
    """The settings for a task of this run: the worker's environment, then the options the run set."""
    return apply(load_settings(), context.get("params"))
