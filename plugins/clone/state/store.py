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
