"""Where state shared by runs lives: Airflow Variables (the metadata database, through the Task SDK) when
the caller runs inside an Airflow task, so every worker of a deployment sees the same values; otherwise
(the ``include/scripts`` tools, tests driving a module directly) the JSON files under ``CLONE_WORKSPACE``
that a single machine always used.

Variables offer get, set, delete and listing by prefix, not compare-and-set: keys are chosen so that no two
writers race on one key (a stall counter is written only by the pass holding its repo's lease; each
ledger entry gets a key of its own). Exclusivity (leases) does not rest on this module.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

log = logging.getLogger(__name__)

#: Every Variable Clone writes starts with this (``airflow variables list | grep clone.``).
PREFIX = "clone."
#: Airflow's ``variable.key`` column holds 250 characters.
_KEY_LIMIT = 250


def key_part(text: str) -> str:
    """``text`` made safe as one dot-separated component of a Variable key."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:100] or "_"


def key(*parts: str) -> str:
    """``clone.<part>.<part>...`` with each part made safe."""
    return (PREFIX + ".".join(key_part(p) for p in parts))[:_KEY_LIMIT]


def in_task() -> bool:
    """Whether this process is an Airflow task that can reach the metadata database's Variables."""
    # Not imported here: importing the task runner sets up Airflow's logging (on stdout) in a plain script;
    # inside a task it is loaded already.
    task_runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


def get(name: str) -> Any | None:
    """The JSON value of Variable ``name``, or None when it is missing or not JSON (damaged state costs
    one extra pass, never a failed task)."""
    from airflow.sdk import Variable

    raw = Variable.get(name, default=None)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        log.warning("state: Variable %s is not JSON; ignoring it", name)
        return None


def put(name: str, value: Any) -> None:
    from airflow.sdk import Variable

    Variable.set(name, json.dumps(value), description="Clone state (README: Shared state)")


def delete(name: str) -> None:
    from airflow.sdk import Variable

    Variable.delete(name)


def names(prefix: str) -> list[str]:
    """Variables whose key starts with ``prefix`` (from the metadata database only)."""
    from airflow.sdk import Variable

    return list(Variable.keys(prefix=prefix))


class MetastoreUnavailable(Exception):
    """The Airflow metadata database cannot be reached from this process (no Airflow, not configured)."""


def _metastore():
    """Airflow's own Variable model and a session on the metadata database, as ``airflow variables`` uses
    them: for the tools under ``include/scripts``, run where the Airflow CLI works (not inside a task)."""
    try:
        from airflow.models.variable import Variable
        from airflow.utils.session import create_session
    except Exception as e:  # noqa: BLE001 - no Airflow here, or its configuration does not load
        raise MetastoreUnavailable(f"cannot load Airflow's metadata database ({e!r})") from e
    return Variable, create_session


def metastore_items(prefix: str) -> dict[str, Any]:
    """``{key: JSON value}`` of the metadata database's Variables whose key starts with ``prefix``
    (a value that is not JSON is given as None)."""
    model, create_session = _metastore()
    from sqlalchemy import select

    try:
        with create_session() as session:
            rows = session.execute(select(model).where(model.key.startswith(prefix))).scalars().all()
            raw = {row.key: row.val for row in rows}
    except Exception as e:  # noqa: BLE001 - no database, not migrated, unreachable
        raise MetastoreUnavailable(f"cannot read Airflow's Variables ({type(e).__name__}: {_first(e)})") from e
    items: dict[str, Any] = {}
    for name, text in sorted(raw.items()):
        try:
            items[name] = json.loads(text) if text is not None else None
        except ValueError:
            items[name] = None
    return items


def metastore_delete(name: str) -> bool:
    """Delete Variable ``name`` from the metadata database; True when it was there."""
    model, _ = _metastore()
    try:
        return bool(model.delete(name))
    except Exception as e:  # noqa: BLE001
        raise MetastoreUnavailable(f"cannot delete Airflow Variable {name} ({type(e).__name__}: {_first(e)})") from e


def _first(error: Exception) -> str:
    """An error's first line (SQLAlchemy appends the statement and a link)."""
    return (str(error).strip().splitlines() or [""])[0]
