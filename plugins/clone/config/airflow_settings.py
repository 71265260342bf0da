"""``airflow_settings.yaml`` (the Astro CLI format) read and validated: connections, pools, variables.

Pure parsing, nothing written: ``read_settings`` expands ``${VAR}`` / ``${VAR:-default}`` references,
rejects unknown keys, missing names, duplicates and bad types naming the entry and field, and
returns frozen specs. ``include/scripts/load_airflow_settings.py`` hands them to Airflow's own import
commands. Imports only the standard library and PyYAML.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

DEFAULT_FILE = Path(__file__).resolve().parents[3] / "airflow_settings.yaml"

_NAME_KEY = {"connections": "conn_id", "pools": "pool_name", "variables": "variable_name"}
_ALLOWED_KEYS = {
    "connections": {"conn_id", "conn_type", "conn_host", "conn_schema", "conn_login", "conn_password",
                    "conn_port", "conn_extra", "conn_uri"},
    "pools": {"pool_name", "pool_slot", "pool_description"},
    "variables": {"variable_name", "variable_value"},
}
_CONN_ID = re.compile(r"[\w#!()\-.:/\\]{1,250}")  # what Airflow's sanitize_conn_id accepts
_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}|\$\{")


class LoadError(Exception):
    """Loading failed; the message says what went wrong and what to do."""


class SettingsError(LoadError):
    """The settings file is invalid; the message names the file, entry and field."""


@dataclasses.dataclass(frozen=True)
class ConnectionSpec:
    """One connection to upsert; ``repr`` leaves out the secret-bearing fields."""

    conn_id: str
    conn_type: str | None = None
    host: str | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    port: int | None = None
    extra: str | None = dataclasses.field(default=None, repr=False)
    uri: str | None = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass(frozen=True)
class PoolSpec:
    """One pool to upsert."""

    name: str
    slots: int
    description: str


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything one settings file asks for, validated and expanded."""

    connections: tuple[ConnectionSpec, ...] = ()
    pools: tuple[PoolSpec, ...] = ()
    variables: tuple[tuple[str, str], ...] = ()


def expand_env(value: Any, environ: Mapping[str, str], where: str) -> Any:
    """Expand ``${VAR}``/``${VAR:-default}``/``$$`` in every string inside ``value``."""
    if isinstance(value, dict):
        return {key: expand_env(item, environ, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [expand_env(item, environ, f"{where}[{i}]") for i, item in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, has_default, default = match.groups()
        if name is None:
            raise SettingsError(f"{where}: malformed '${{' (write ${{VAR}}, ${{VAR:-default}} or $$)")
        found = environ.get(name)
        if has_default is not None and not found:
            return default
        if found is None:
            raise SettingsError(f"{where}: environment variable {name} is not set (or write ${{{name}:-}})")
        return found

    return _ENV_REF.sub(substitute, value)


def _text(entry: dict, key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise SettingsError(f"{where}: {key} must be a string, got {type(value).__name__}")
    return str(value)


def _integer(entry: dict, key: str, where: str, *, minimum: int) -> int | None:
    value = entry.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SettingsError(f"{where}: {key} must be an integer >= {minimum}, got {value!r}")
    return value


def _extra(entry: dict, where: str) -> str | None:
    extra = entry.get("conn_extra")
    if extra is None or extra == "" or extra == {}:
        return None
    if isinstance(extra, dict):
        return json.dumps(extra)
    try:
        if isinstance(extra, str) and isinstance(json.loads(extra), dict):
            return extra
    except ValueError:
        pass
    raise SettingsError(f"{where}: conn_extra must be a mapping or a JSON object string")


def _connection(entry: dict, where: str) -> ConnectionSpec:
    conn_id = str(entry["conn_id"])
    if not _CONN_ID.fullmatch(conn_id):
        raise SettingsError(f"{where}: conn_id may only hold letters, digits, _ and #!()-.:/\\ (at most 250)")
    spec = ConnectionSpec(
        conn_id=conn_id,
        conn_type=_text(entry, "conn_type", where),
        host=_text(entry, "conn_host", where),
        schema=_text(entry, "conn_schema", where),
        login=_text(entry, "conn_login", where),
        password=_text(entry, "conn_password", where),
        port=_integer(entry, "conn_port", where, minimum=0),
        extra=_extra(entry, where),
        uri=_text(entry, "conn_uri", where),
    )
    fields = (spec.conn_type, spec.host, spec.schema, spec.login, spec.password, spec.port, spec.extra)
    if spec.uri and any(field is not None for field in fields):
        raise SettingsError(f"{where}: give either conn_uri or the separate conn_* fields, not both")
    if not spec.uri and not spec.conn_type:
        raise SettingsError(f"{where}: conn_type is required (or give conn_uri)")
    return spec


def _pool(entry: dict, where: str) -> PoolSpec:
    slots = _integer(entry, "pool_slot", where, minimum=-1)
    if slots is None:
        raise SettingsError(f"{where}: missing pool_slot (-1 means unlimited)")
    return PoolSpec(str(entry["pool_name"]), slots, _text(entry, "pool_description", where) or "")


def _variable(entry: dict, where: str) -> tuple[str, str]:
    value = entry.get("variable_value")
    if value is None:
        raise SettingsError(f'{where}: missing variable_value (write "" for an empty value)')
    if isinstance(value, (bool, dict, list)):  # JSON spelling, so an unquoted `false` reads back "false"
        value = json.dumps(value)
    return str(entry["variable_name"]), str(value)


_BUILDERS = {"connections": _connection, "pools": _pool, "variables": _variable}


def _entries(airflow: dict, section: str, source: str, environ: Mapping[str, str]) -> list[Any]:
    entries = airflow.get(section) or []
    if not isinstance(entries, list):
        raise SettingsError(f"{source}: airflow.{section} must be a list")
    name_key, allowed, built, seen = _NAME_KEY[section], _ALLOWED_KEYS[section], [], set()
    for index, raw in enumerate(entries):
        where = f"{source}: airflow.{section}[{index}]"
        if not isinstance(raw, dict):
            raise SettingsError(f"{where}: each entry must be a mapping")
        if raw.get(name_key) not in (None, ""):
            where += f" ({name_key} {raw[name_key]!r})"
        for key in raw:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                raise SettingsError(f"{where}: unknown key {key!r}"
                                    + (f" (did you mean {hint[0]!r}?)" if hint else "")
                                    + f"; allowed keys: {', '.join(sorted(allowed))}")
        entry = expand_env(raw, environ, where)
        name = entry.get(name_key)
        if name is None or name == "" or not isinstance(name, (str, int)):
            raise SettingsError(f"{where}: missing {name_key}")
        if str(name) in seen:
            raise SettingsError(f"{where}: duplicate {name_key} {name!r}")
        seen.add(str(name))
        built.append(_BUILDERS[section](entry, where))
    return built


def parse_settings(document: Any, environ: Mapping[str, str], source: str) -> Settings:
    """Validate a loaded YAML document, expanding environment references in its strings."""
    if document is None:
        return Settings()
    if not isinstance(document, dict) or set(document) != {"airflow"}:
        raise SettingsError(f"{source}: expected a single top-level key 'airflow'")
    airflow = document["airflow"] or {}
    if not isinstance(airflow, dict):
        raise SettingsError(f"{source}: 'airflow' must be a mapping")
    unknown = sorted(str(key) for key in set(airflow) - set(_NAME_KEY))
    if unknown:
        raise SettingsError(f"{source}: unknown section {', '.join(unknown)} under 'airflow' "
                            f"(allowed: {', '.join(_NAME_KEY)})")
    return Settings(*(tuple(_entries(airflow, section, source, environ)) for section in _NAME_KEY))


def read_settings(path: Path, environ: Mapping[str, str]) -> Settings:
    """Read and validate one settings file."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise SettingsError(f"{path}: cannot read: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise SettingsError(f"{path}: invalid YAML: {e}") from e
    return parse_settings(document, environ, str(path))


def override_pool_slots(settings: Settings, overrides: Mapping[str, int]) -> Settings:
    """Return ``settings`` with the named pools' slots replaced; descriptions are kept."""
    missing = sorted(set(overrides) - {pool.name for pool in settings.pools})
    if missing:
        raise SettingsError(f"--pool-slots: no pool named {', '.join(missing)} in the settings file")
    pools = tuple(dataclasses.replace(pool, slots=overrides.get(pool.name, pool.slots))
                  for pool in settings.pools)
    return dataclasses.replace(settings, pools=pools)

