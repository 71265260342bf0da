"""Idea statuses kept in Airflow Variables where ideas.yaml cannot be written (:mod:`clone.state.kept`).

``clone.ideas.<id>`` holds ``{"id": ..., "fields": {key: value}, "base": {key: what the file said}}``. On
every read a kept value applies only while the file still says what it said when the value was kept: a
key the user has changed in the file since (say, status back to TRIAGED to retry) is the file's again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from clone.errors import ConfigError
from clone.state import kept, store


def variable_name(idea_id: str) -> str:
    return kept.IDEAS + store.key_part(idea_id)


def _plain(value: Any) -> Any:
    """A value from the YAML file as JSON can hold it (YAML timestamps become our timestamp text)."""
    if isinstance(value, dt.datetime):
        from clone.ideas.ideas_file import timestamp
        return timestamp(value)
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def read(idea_id: str) -> dict[str, Any] | None:
    """The kept value for ``idea_id``, checked; ConfigError naming the Variable and the field."""
    name = variable_name(idea_id)
    value = kept.read(name)
    if value is None:
        return None
    value = checked(name, value)
    if value["id"] != idea_id:
        raise ConfigError(f"Variable {name}: field 'id' is {value['id']!r}, not {idea_id!r}")
    return value


def checked(name: str, value: Any) -> dict[str, Any]:
    """A ``clone.ideas.<id>`` value with its shape and fields checked; ConfigError naming ``name``."""
    from clone.ideas.ideas_file import _validate

    idea_id = str(kept.field(value, name, "id", (str, int), "the idea's id"))
    fields = kept.field(value, name, "fields", dict, "a JSON object of the idea's keys")
    base = value.get("base", {})
    if not isinstance(base, dict):
        raise ConfigError(f"Variable {name}: field 'base' must be a JSON object, got {base!r}")
    if "id" in fields:
        raise ConfigError(f"Variable {name}: field 'fields' may not set 'id'")
    _validate({"id": idea_id, **{k: v for k, v in fields.items() if v is not None}},
              f"Variable {name}: field 'fields'")
    return {"id": idea_id, "fields": fields, "base": base}


def apply(raw: Mapping[str, Any], value: Mapping[str, Any] | None) -> dict[str, Any]:
    """The file's entry with the kept keys the file has not changed since they were kept."""
    entry = dict(raw)
    for key, kept_value in (value or {}).get("fields", {}).items():
        if _plain(raw.get(key)) == value["base"].get(key):
            if kept_value is None:
                if key in entry:
                    entry[key] = None
            else:
                entry[key] = kept_value
    return entry


def overlay(raw_entries: list[Any]) -> tuple[list[Any], list[str]]:
    """The file's entries with what is kept for them applied, and one problem per bad Variable (its idea then
    stands as the file says)."""
    from clone.ideas.ideas_file import id_of

    present = set(store.names(kept.IDEAS))
    result, problems = [], []
    for raw in raw_entries:
        idea_id = id_of(raw)
        if idea_id is None or variable_name(idea_id) not in present:
            result.append(raw)
            continue
        try:
            result.append(apply(raw, read(idea_id)))
        except ConfigError as e:
            problems.append(f"{e} (the idea stands as ideas.yaml says)")
            result.append(raw)
    return result, problems


def update(path: Path, idea_id: str, changes: Mapping[str, Any],
           check: Callable[[list[Any]], None] | None = None) -> Any:
    """:func:`clone.ideas.ideas_file.update_idea` for a file that is not written: the same checks, the change
    kept in ``clone.ideas.<id>``. Only this idea's own chain writes that Variable (one step at a time)."""
    from clone.ideas import ideas_file as ideas
    from clone.util import yamlio

    entries = ideas._entries_of(yamlio.load_document(path), path)
    merged, _ = overlay(entries)
    if check is not None:
        check([idea for idea in ideas.validate_entries(merged, path)[0] if idea.id != idea_id])
    matches = [i for i, raw in enumerate(entries) if ideas.id_of(raw) == idea_id]
    if not matches:
        raise ConfigError(f"{path}: idea {idea_id!r} is no longer in the file (removed, or its id changed); "
                          "not updating it")
    if len(matches) > 1:
        raise ConfigError(f"{path}: idea {idea_id!r} is used by {len(matches)} entries; not updating it")
    index = matches[0]
    raw = entries[index]
    try:
        value = read(idea_id) or {"id": idea_id, "fields": {}, "base": {}}
    except ConfigError:
        value = {"id": idea_id, "fields": {}, "base": {}}  # damaged: replaced by what this step knows
    fields = {k: v for k, v in value["fields"].items() if _plain(raw.get(k)) == value["base"].get(k)}
    base = {k: value["base"].get(k) for k in fields}
    for key, new in changes.items():
        fields[key] = new
        base[key] = _plain(raw.get(key))
    value = {"id": idea_id, "fields": fields, "base": base}
    idea = ideas._validate(apply(raw, value), f"{path}: idea {idea_id!r} (entry {index + 1}, with Variable "
                           f"{variable_name(idea_id)})")
    kept.write(variable_name(idea_id), value)
    return idea
