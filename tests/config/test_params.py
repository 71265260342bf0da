"""The trigger form's Params: null defaults resolved by the worker, schema validation, overrides."""

from __future__ import annotations

import pytest
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.exceptions import ParamValidationError

from clone.errors import ConfigError
from clone.config.params import OPTIONS, apply, fleet_params, run_settings
from clone.config.settings import Settings, load_settings

DOCUMENTED = ["repos", "model", "tasks_per_repo", "agent", "push_mode", "autofix", "dry_run", "cycles",
              "max_hours"]
ENV_SAMPLES = {"MODEL": ("o7", "o7"), "TASKS_PER_REPO": ("4", 4), "CLONE_AGENT": ("claude", "claude"),
               "CLONE_PUSH_MODE": ("pr", "pr"), "CI_AUTOFIX_ENABLED": ("0", False), "MAX_CYCLES": ("3", 3),
               "MAX_HOURS": ("1.5", 1.5)}


def validated(conf: dict) -> dict:
    params = ParamsDict(fleet_params())
    params.update(conf)
    return params.validate()


def test_the_documented_params_in_order():
    assert list(fleet_params()) == DOCUMENTED


def test_the_form_bakes_in_nothing_from_the_parsing_environment(clone_env, monkeypatch):
    for name, (raw, _) in ENV_SAMPLES.items():
        monkeypatch.setenv(name, raw)
    defaults = {name: param.value for name, param in fleet_params().items()}
    assert defaults == {**{name: None for name in DOCUMENTED}, "dry_run": False}


def test_every_default_passes_its_own_schema():
    # The 3.3 form disables Trigger on a field it takes for required and empty (a string Param
    # defaulting to ""); null defaults must therefore be allowed by each schema.
    assert validated({}) == {**{name: None for name in DOCUMENTED}, "dry_run": False}
    for name, param in fleet_params().items():
        types = param.schema.get("type")
        if param.value is None and types is not None:
            assert "null" in types, (name, types)


def test_each_option_maps_the_variable_load_settings_reads(clone_env, monkeypatch):
    assert set(ENV_SAMPLES) == {option.env for option in OPTIONS}
    for option in OPTIONS:
        raw, parsed = ENV_SAMPLES[option.env]
        monkeypatch.setenv(option.env, raw)
        assert getattr(load_settings(), option.field) == parsed, option
        monkeypatch.delenv(option.env)


def test_descriptions_name_the_variable_and_the_builtin_default():
    params = fleet_params()
    assert "TASKS_PER_REPO" in params["tasks_per_repo"].description
    assert "built-in default 10" in params["tasks_per_repo"].description
    assert "built-in default the agent's own default model" in params["model"].description
    assert params["autofix"].schema["values_display"]["null"] == \
        "default: CI_AUTOFIX_ENABLED when the task runs (unset: on)"
    assert params["agent"].schema["values_display"]["null"] == \
        "default: CLONE_AGENT when the task runs (unset: codex)"
    for option in OPTIONS:
        assert option.env in params[option.name].description, option


def test_null_and_empty_options_keep_the_workers_environment(clone_env, monkeypatch):
    params = fleet_params()  # built first, as the DAG processor does
    for name, (raw, _) in ENV_SAMPLES.items():
        if name != "CLONE_AGENT":  # the clone_env agent is the scripted command agent
            monkeypatch.setenv(name, raw)
    defaults = {name: param.value for name, param in params.items()}
    settings = run_settings({"params": {**defaults, "model": ""}})
    assert (settings.model, settings.tasks_per_repo, settings.push_mode, settings.ci_autofix_enabled,
            settings.max_cycles, settings.max_hours, settings.dry_run) == \
        ("o7", 4, "pr", False, 3, 1.5, False)
    assert settings.agent == "command"


def test_without_environment_the_builtin_defaults_apply(clone_env):
    settings = apply(load_settings(), validated({}))
    builtin = Settings(code_root=settings.code_root, repos_file=settings.repos_file,
                       ideas_file=settings.ideas_file, workspace=settings.workspace)
    for option in OPTIONS:
        if option.name != "agent":
            assert getattr(settings, option.field) == getattr(builtin, option.field), option


def test_explicit_options_override_the_environment(clone_env, monkeypatch):
    monkeypatch.setenv("TASKS_PER_REPO", "4")
    monkeypatch.setenv("CI_AUTOFIX_ENABLED", "1")
    conf = validated({"model": "o9", "tasks_per_repo": 2, "autofix": False, "dry_run": True, "cycles": 5,
                      "max_hours": 0, "push_mode": "gated", "repos": ["a"]})
    settings = apply(load_settings(), conf)
    assert (settings.model, settings.tasks_per_repo, settings.ci_autofix_enabled, settings.dry_run,
            settings.max_cycles, settings.max_hours, settings.push_mode) == \
        ("o9", 2, False, True, 5, 0, "gated")


def test_agent_command_without_a_command_line_is_a_clear_error(clone_env, monkeypatch):
    monkeypatch.delenv("CLONE_AGENT_COMMAND")
    monkeypatch.setenv("CLONE_AGENT", "codex")
    with pytest.raises(ConfigError, match="agent=command needs CLONE_AGENT_COMMAND"):
        apply(load_settings(), validated({"agent": "command"}))


@pytest.mark.parametrize("conf, message", [
    ({"tasks_per_repo": 0}, "0 is less than the minimum of 1"),
    ({"cycles": 1.5}, "is not of type 'null', 'integer'"),
    ({"max_hours": -1}, "less than the minimum of 0"),
    ({"agent": "gpt"}, "'gpt' is not one of"),
    ({"push_mode": "force"}, "'force' is not one of"),
    ({"autofix": "yes"}, "'yes' is not one of [None, True, False]"),
    ({"autofix": 1}, "1 is not one of [None, True, False]"),
    ({"model": 3}, "3 is not of type 'null', 'string'"),
    ({"repos": ["a b"]}, "'a b' does not match"),
    ({"repos": "alpha"}, "'alpha' is not of type 'null', 'array'"),
    ({"dry_run": None}, "None is not of type 'boolean'"),
])


def test_bad_conf_is_rejected_with_the_schema_message(conf, message):
    with pytest.raises(ParamValidationError) as raised:
        validated(conf)
    assert message in str(raised.value) and next(iter(conf)) in str(raised.value)
