"""Put the run summary on the DAG run as its note, so it shows in the UI.

The Task SDK cannot edit a run's note, so this goes through Airflow's public REST API:
``POST /auth/token`` then ``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}``. Credentials come
from the Airflow connection ``clone_airflow_api`` (host = the API's base URL, login, password)
or, on a local ``airflow standalone`` (``make up``), from its generated admin password file.
Best effort: when neither is available, or the API refuses, the summary stays in the log and
the reason is logged.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from urllib.parse import quote

import httpx

log = logging.getLogger(__name__)

API_CONN_ID = "clone_airflow_api"
NOTE_MAX_CHARS = 1000  # Airflow's limit on a DAG run note


def _connection_credentials() -> tuple[str, str, str] | None:
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(API_CONN_ID)
        if conn.host and conn.login:
            base = conn.host if "://" in conn.host else f"http://{conn.host}"
            if conn.port:
                base = f"{base.rstrip('/')}:{conn.port}"
            return base.rstrip("/"), conn.login, conn.password or ""
    except Exception:  # noqa: BLE001 - a missing connection is the normal case
        pass
    return None


def _credentials() -> tuple[str, str, str] | None:
    """(base URL, user, password) for the public API, or None."""
    found = _connection_credentials()
    if found:
        return found
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
    passwords = home / "simple_auth_manager_passwords.json.generated"
    try:
        users = json.loads(passwords.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(users, dict) or not users:
        return None
    user = "admin" if "admin" in users else sorted(users)[0]
    base = os.environ.get("AIRFLOW__API__BASE_URL") or f"http://localhost:{os.environ.get('AIRFLOW__API__PORT', '8080')}"
    return base.rstrip("/"), user, str(users[user])


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


def set_run_note(dag_id: str, run_id: str, note: str, *, timeout: float = 10.0) -> str | None:
    """Set the note; returns None on success, else why it was not set."""
    creds = _credentials()
    if creds is None:
        return (f"no API credentials (set the Airflow connection {API_CONN_ID!r}: host = the API base URL, "
                "login, password)")
    base, user, password = creds
    try:
        with httpx.Client(timeout=timeout) as client:
            token = client.post(f"{base}/auth/token", json={"username": user, "password": password})
            if token.status_code >= 300:
                return f"POST {base}/auth/token answered {token.status_code}"
            access = token.json().get("access_token")
            answer = client.patch(f"{base}/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}",
                                  json={"note": fit_note(note)}, headers={"Authorization": f"Bearer {access}"})
            if answer.status_code >= 300:
                return f"PATCH dagRuns/{run_id} answered {answer.status_code}: {answer.text[:200]}"
    except (httpx.HTTPError, ValueError) as e:
        return f"the API at {base} could not be reached: {e}"
    return None
