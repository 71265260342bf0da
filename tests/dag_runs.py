"""Triggering a DAG run over the REST API of a real Airflow and waiting for it, for slow tests."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.standalone import Api, wait_for

FINISHED = ("success", "failed")


def unpause(api: Api, dag_id: str) -> None:
    answer = api.client.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False})
    assert answer.status_code == 200, answer.text


def trigger(api: Api, dag_id: str, conf: dict[str, Any] | None = None) -> str:
    made = api.client.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
    assert made.status_code == 200, made.text
    return made.json()["dag_run_id"]


def wait_finished(api: Api, dag_id: str, run_id: str, timeout: float, process, log) -> dict[str, Any]:
    """The run's JSON once it is success or failed (``process``/``log``: see tests.standalone.wait_for)."""
    path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"

    def finished() -> dict[str, Any] | None:
        state = api.get(path)
        body = state.json() if state is not None and state.status_code == 200 else {}
        return body if body.get("state") in FINISHED else None

    return wait_for(f"run {run_id} to finish", finished, timeout, process, log, interval=0.3)


def task_instances(api: Api, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """Every task instance of the run (mapped ones one by one), with state and hostname."""
    path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances?limit=1000"
    answer = api.client.get(path)
    assert answer.status_code == 200, answer.text
    return answer.json()["task_instances"]


def chains(instances: list[dict[str, Any]]) -> dict[int, dict[str, dict[str, Any]]]:
    """Per map index, the repo chain's instances by task id (``repo.agent_pass`` ...)."""
    out: dict[int, dict[str, dict[str, Any]]] = {}
    for ti in instances:
        if ti["task_id"].startswith("repo.") and ti["map_index"] >= 0:
            out.setdefault(ti["map_index"], {})[ti["task_id"]] = ti
    return out
