"""Where Clone's own writes to the files users edit go: into repos.yaml and ideas.yaml, or, where the
deployment cannot write them (a read-only or git-synced DAG bundle), into Airflow Variables.

``CLONE_FILE_WRITES`` chooses: ``auto`` (the default) writes the file when it is writable and keeps the
change in Variables otherwise; ``file`` always writes the file (a read-only file is then an error);
``variables`` never writes the file. Variables are reachable inside Airflow tasks only, so outside one
(``include/scripts``) the file is written as before.

The Variables, each a JSON value (README: "Read-only bundles"):

* ``clone.fleet.discovered``: ``{"repos": [{"path": ..., "name": ...}, ...]}``, the checkouts discovery
  found that repos.yaml does not list;
* ``clone.fleet.enrolled.<name>``: one repos.yaml entry the ideas DAG enrolled;
* ``clone.ideas.<id>``: ``{"id": ..., "fields": {...}, "base": {...}}``, what the ideas DAG set on the
  idea (status, last_error, retry_at, repo_path, github, timestamps) and what the file said for each of
  those keys when it did; a key the user has changed in the file since then is the file's again.

Reading always merges the file with the Variables, and the file wins: an entry the user wrote, or a key
the user changed, is never overridden by a kept value. ``include/scripts/export_state.py`` prints the kept
state as repos.yaml/ideas.yaml fragments to paste into the files.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

from clone.errors import ConfigError
from clone.state import store

log = logging.getLogger(__name__)

MODES = ("auto", "file", "variables")
DISCOVERED = "clone.fleet.discovered"
ENROLLED = "clone.fleet.enrolled."
IDEAS = "clone.ideas."
#: The Variables this module keeps (what the run note and export_state.py name).
KEPT_PREFIXES = ("clone.fleet.", IDEAS)


def file_writes() -> str:
    """``CLONE_FILE_WRITES``: auto (default), file or variables."""
    value = (os.environ.get("CLONE_FILE_WRITES") or "auto").strip().lower()
    if value not in MODES:
        raise ConfigError(f"CLONE_FILE_WRITES={value!r} is not one of {', '.join(MODES)}")
    return value


def _has_write_bit(path: Path) -> bool:
    return bool(path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def writable(path: Path) -> bool:
    """Whether Clone may write ``path`` (and the lock and temporary files beside it): the file and its folder
    are writable and carry a write permission bit (so a ``chmod a-w`` counts as read-only even for root)."""
    folder = path.parent
    try:
        if not (folder.is_dir() and os.access(folder, os.W_OK) and _has_write_bit(folder)):
            return False
        return not path.exists() or (os.access(path, os.W_OK) and _has_write_bit(path))
    except OSError:
        return False


def use_variables(path: Path) -> bool:
    """Whether a change to ``path`` is kept in Variables instead of written to the file."""
    mode = file_writes()
    if mode == "file":
        return False
    if mode == "auto" and writable(path):
        return False
    if not store.in_task():
        if mode == "variables":
            raise ConfigError(f"CLONE_FILE_WRITES=variables: not writing {path}, and the Airflow Variables "
                              "are reachable only from an Airflow task")
        return False  # the file write reports why it cannot be done
    log.info("%s is %s: keeping the change in Airflow Variables (README: Read-only bundles)", path,
             "not writable here" if mode == "auto" else "not written (CLONE_FILE_WRITES=variables)")
    return True


def read(name: str) -> Any | None:
    """The JSON value of Variable ``name`` (None when missing); ConfigError naming it when it is not JSON."""
    from airflow.sdk import Variable

    return parse(name, Variable.get(name, default=None))


def parse(name: str, raw: str | None) -> Any | None:
    """A Variable's text as JSON (None stays None); ConfigError naming it when it is not JSON."""
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError as e:
        raise ConfigError(f"Variable {name}: not JSON ({e}); fix it, or delete it with "
                          f"`airflow variables delete {name}`") from None


def field(value: Any, name: str, key: str, kind: type, what: str) -> Any:
    """``value[key]`` checked to be ``kind``; ConfigError naming the Variable and the field."""
    if not isinstance(value, dict):
        raise ConfigError(f"Variable {name}: expected a JSON object, got {type(value).__name__}")
    got = value.get(key)
    if not isinstance(got, kind):
        raise ConfigError(f"Variable {name}: field {key!r} must be {what}, got {got!r}")
    return got


def write(name: str, value: Any) -> None:
    from airflow.sdk import Variable

    Variable.set(name, json.dumps(value, sort_keys=True), description="Clone: kept instead of a read-only file "
                 "(README: Read-only bundles)")


def kept_names() -> list[str]:
    """Every Variable this module keeps, sorted (inside a task only; else empty)."""
    if not store.in_task():
        return []
    return sorted({name for prefix in KEPT_PREFIXES for name in store.names(prefix)})


def note_line(names: list[str]) -> str | None:
    """The run note's ``KEPT IN VARIABLES:`` line, or None when nothing is kept there."""
    if not names:
        return None
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    return (f"KEPT IN VARIABLES: {shown} (the files were not writable; see or export them with "
            "include/scripts/export_state.py)")
