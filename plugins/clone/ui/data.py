"""Read what the DAG runs recorded from Airflow's metadata DB (the api-server's ORM session): the
``fleet_record`` XCom of each ``clone_fleet*`` run's summary, the ``ideas`` XCom of ``clone_ideas``
runs, and the kill switch Variable. Nothing is read from any disk, so a distributed deployment works.
Finished records never change, so parsed ones are kept in memory keyed by their XCom's timestamp."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, or_, select

RECORD_KEY = "fleet_record"  # clone.workflow.fleet_record.RECORD_KEY (not imported: no DAG code here)
IDEAS_KEY = "ideas"
FLEET_DAG = "clone_fleet"
IDEAS_DAG = "clone_ideas"
PAUSE_VARIABLE = "clone_paused"
CACHE_SIZE = 5000


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One run's record, as the page needs it."""

    dag_id: str
    run_id: str
    started: dt.datetime
    state: str
    record: Mapping[str, Any]


_cache: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_lock = threading.Lock()


def _parse(value: Any) -> Any:
    """An XCom value as stored: JSON already decoded, or a JSON string (older serialisations)."""
    if isinstance(value, (bytes, str)):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _values(session: Any, keys: Sequence[tuple[int, str, Any]], task_id: str) -> dict[tuple[int, str, Any], Any]:
    """The parsed XCom values for ``keys`` (dag_run pk, key, timestamp): from the cache, else from the DB
    (only the missing ones are fetched, so a warm page parses no JSON)."""
    from airflow.models.xcom import XComModel

    with _lock:
        found = {k: _cache[k] for k in keys if k in _cache}
        for k in found:
            _cache.move_to_end(k)
    missing = [k for k in keys if k not in found]
    for chunk in range(0, len(missing), 500):
        part = missing[chunk:chunk + 500]
        stmt = (select(XComModel.dag_run_id, XComModel.key, XComModel.timestamp, XComModel.value)
                .where(XComModel.dag_run_id.in_([k[0] for k in part]), XComModel.task_id == task_id,
                       XComModel.key == part[0][1], XComModel.map_index == -1))
        for run_pk, key, stamp, value in session.execute(stmt):
            found[(run_pk, key, stamp)] = _parse(value)
    with _lock:
        for k in missing:
            if k in found:
                _cache[k] = found[k]
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return found


def fleet_dag_ids(session: Any) -> list[str]:
    """``clone_fleet`` and any ``clone_fleet__*`` DAG that has runs."""
    from airflow.models.dagrun import DagRun

    stmt = select(DagRun.dag_id).distinct().where(or_(DagRun.dag_id == FLEET_DAG,
                                                      DagRun.dag_id.like(f"{FLEET_DAG}\\_\\_%", escape="\\")))
    return sorted(session.scalars(stmt))


def _records(session: Any, dag_ids: Sequence[str], task_id: str, key: str, since: dt.datetime) -> list[RunRecord]:
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel

    if not dag_ids:
        return []
    stmt = (select(DagRun.dag_id, DagRun.run_id, DagRun.start_date, DagRun.state, XComModel.dag_run_id,
                   XComModel.timestamp)
            .join(XComModel, and_(XComModel.dag_run_id == DagRun.id, XComModel.task_id == task_id,
                                  XComModel.key == key, XComModel.map_index == -1))
            .where(DagRun.dag_id.in_(list(dag_ids)), DagRun.start_date >= since)
            .order_by(DagRun.start_date))
    runs = list(session.execute(stmt))
    values = _values(session, [(run_pk, key, stamp) for *_, run_pk, stamp in runs], task_id)
    found = []
    for dag_id, run_id, started, state, run_pk, stamp in runs:
        parsed = values.get((run_pk, key, stamp))
        if isinstance(parsed, (Mapping, list)):
            found.append(RunRecord(dag_id, run_id, started, str(state), parsed))
    return found


def fleet_records(session: Any, dag_ids: Sequence[str], since: dt.datetime) -> list[RunRecord]:
    """Every fleet run since ``since`` with a record, oldest first."""
    return [r for r in _records(session, dag_ids, "summary", RECORD_KEY, since) if isinstance(r.record, Mapping)]


def idea_records(session: Any, since: dt.datetime) -> list[RunRecord]:
    """Every ``clone_ideas`` run since ``since`` that recorded its ideas, oldest first."""
    return _records(session, [IDEAS_DAG], "summary", IDEAS_KEY, since)


def fleet_paused(session: Any) -> bool:
    """The kill switch as it is now (the Airflow Variable ``clone_paused``)."""
    from airflow.models.variable import Variable

    row = session.scalar(select(Variable).where(Variable.key == PAUSE_VARIABLE))
    value = row.val if row is not None else "false"
    return str(value).strip().lower() in {"1", "true", "yes", "on"}
