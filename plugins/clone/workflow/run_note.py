"""Put the run summary on the DAG run as its note, so it shows in the UI, and read why tasks skipped.

The Task SDK can neither edit a run's note nor read why a task instance was skipped (the skip
message is only in the task's log), so both go through Airflow's public REST API: ``POST /auth/token``,
then ``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}`` for the note, and the task instances and their
logs for the skip messages. Credentials come only from the Airflow connection ``clone_airflow_api``
(host = the API's base URL, login, password; README: "The run summary"); ``make up`` defines it for the
local admin. No password file is ever read. Best effort: when the connection is missing, or the API
refuses, the summary stays in the log and the reason is logged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Iterator
from urllib.parse import quote

import httpx

log = logging.getLogger(__name__)

API_CONN_ID = "clone_airflow_api"
NOTE_MAX_CHARS = 1000  # Airflow's limit on a DAG run note
MAX_SKIP_LOGS = 100  # skip messages read per run (one log request each); the rest say "see the log"
SKIP_EVENT = "Skipping task."  # what the Task SDK logs, with the exception's message as ``reason``
PAGE = 100  # the REST API's default maximum page size


class ApiUnavailable(Exception):
    """The public API cannot be used from here; the message says why."""


def _credentials() -> tuple[str, str, str] | None:
    """(base URL, user, password) from the connection ``clone_airflow_api``, or None."""
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(API_CONN_ID)
    except Exception:  # noqa: BLE001 - a missing connection is the normal case
        return None
    if not (conn.host and conn.login):
        return None
    base = conn.host if "://" in conn.host else f"http://{conn.host}"
    if conn.port:
        base = f"{base.rstrip('/')}:{conn.port}"
    return base.rstrip("/"), conn.login, conn.password or ""


def fit_note(text: str, limit: int = NOTE_MAX_CHARS) -> str:
    """``text`` cut on a line boundary to Airflow's note limit, saying where the rest is."""
    if len(text) <= limit:
        return text
    tail = "\n… (the full table is in the summary task's log)"
    kept, size = [], 0
    for line in text.splitlines():
        if size + len(line) + 1 > limit - len(tail):
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(kept) + tail


@contextlib.contextmanager
def _api(timeout: float) -> Iterator[httpx.Client]:
    """A client logged in to the public API; raises ApiUnavailable (or httpx.HTTPError, ValueError)."""
    creds = _credentials()
    if creds is None:
        raise ApiUnavailable(f"no API credentials (set the Airflow connection {API_CONN_ID!r}: host = the API "
                             "base URL, login, password)")
    base, user, password = creds
    with httpx.Client(base_url=base, timeout=timeout) as client:
        token = client.post("/auth/token", json={"username": user, "password": password})
        if token.status_code >= 300:
            raise ApiUnavailable(f"POST {base}/auth/token answered {token.status_code}")
        client.headers["Authorization"] = f"Bearer {token.json().get('access_token')}"
        yield client


def _run_path(dag_id: str, run_id: str) -> str:
    return f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"


def set_run_note(dag_id: str, run_id: str, note: str, *, timeout: float = 10.0) -> str | None:
    """Set the note; returns None on success, else why it was not set."""
    try:
        with _api(timeout) as client:
            answer = client.patch(_run_path(dag_id, run_id), json={"note": fit_note(note)})
            if answer.status_code >= 300:
                return f"PATCH dagRuns/{run_id} answered {answer.status_code}: {answer.text[:200]}"
    except ApiUnavailable as e:
        return str(e)
    except (httpx.HTTPError, ValueError) as e:
        return f"the API could not be reached: {e}"
    return None


def _skip_message(content: object) -> str | None:
    """The ``reason`` of the Task SDK's "Skipping task." line in a log read as JSON."""
    for line in content if isinstance(content, list) else ():
        if isinstance(line, dict) and line.get("event") == SKIP_EVENT and line.get("reason"):
            return str(line["reason"])
    return None


def skip_reasons(dag_id: str, run_id: str, wanted: Collection[tuple[str, int]], *,
                 timeout: float = 10.0) -> tuple[dict[tuple[str, int], str], str | None]:
    """For each ``(task_id, map_index)`` in ``wanted``, the message its skip gave, read from the log of its
    latest try; returns what was found and, when some could not be read, why."""
    found: dict[tuple[str, int], str] = {}
    if not wanted:
        return found, None
    path = _run_path(dag_id, run_id)
    try:
        with _api(timeout) as client:
            tries: dict[tuple[str, int], int] = {}
            offset = 0
            while True:
                page = client.get(f"{path}/taskInstances", params={"state": "skipped", "limit": PAGE,
                                                                   "offset": offset})
                if page.status_code >= 300:
                    return found, f"GET {path}/taskInstances answered {page.status_code}"
                instances = page.json().get("task_instances") or []
                for ti in instances:
                    tries[(ti["task_id"], int(ti.get("map_index", -1)))] = int(ti.get("try_number") or 0)
                offset += len(instances)
                if not instances or offset >= int(page.json().get("total_entries") or 0):
                    break
            todo = [key for key in wanted if tries.get(key)]
            for task_id, map_index in todo[:MAX_SKIP_LOGS]:
                answer = client.get(f"{path}/taskInstances/{quote(task_id, safe='')}/logs/"
                                    f"{tries[(task_id, map_index)]}",
                                    params={"map_index": map_index, "full_content": "true"},
                                    headers={"Accept": "application/json"})
                if answer.status_code < 300:
                    message = _skip_message(answer.json().get("content"))
                    if message:
                        found[(task_id, map_index)] = message
    except ApiUnavailable as e:
        return found, str(e)
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
        return found, f"the API could not be read: {e!r}"
    missing = len(wanted) - len(found)
    why = None
    if missing:
        why = f"{missing} skip message(s) not found in the task logs" + (
            f" (at most {MAX_SKIP_LOGS} logs are read per run)" if len(wanted) > MAX_SKIP_LOGS else "")
    return found, why
