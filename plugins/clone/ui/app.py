"""The FastAPI app the api-server mounts at ``/clone`` (see ``plugins/clone_fleet_plugin.py``): the page
(``/clone/``), one repo's history (``/clone/repos/{repo}``) and the data behind them
(``/clone/api/fleet``, JSON). Behind Airflow's own login: the JWT of the UI's ``_token`` cookie or a
``Bearer`` token, resolved by Airflow's auth manager; a user sees the records of the ``clone_fleet*``
DAGs whose XComs the auth manager lets them read."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from clone.ui import data, page, view

PREFIX = "/clone"


def ui_days() -> int:
    """CLONE_UI_DAYS: how many days of runs the page reads and charts (default 30, at least 7)."""
    try:
        return max(7, int(os.environ.get("CLONE_UI_DAYS") or 30))
    except ValueError:
        return 30


def cost_per_mtok() -> float:
    """CLONE_COST_PER_MILLION_TOKENS: the price shown as cost (default 0: no cost column figures)."""
    try:
        return max(0.0, float(os.environ.get("CLONE_COST_PER_MILLION_TOKENS") or 0))
    except ValueError:
        return 0.0


def _base() -> str:
    from airflow.configuration import conf

    return (conf.get("api", "base_url", fallback="") or "").rstrip("/")


async def current_user(request: Request) -> Any:
    """The logged-in Airflow user (Bearer header first, else the UI's ``_token`` cookie); 401 otherwise."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.core_api.security import resolve_user_from_token

    header = request.headers.get("authorization") or ""
    token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    return await resolve_user_from_token(token)


def readable_dags(session: Any, user: Any) -> list[str]:
    """The fleet DAGs whose XComs ``user`` may read; 403 when there are some and none is readable."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    manager = get_auth_manager()
    known = data.fleet_dag_ids(session)
    allowed = [d for d in known if manager.is_authorized_dag(method="GET", access_entity=DagAccessEntity.XCOM,
                                                              details=DagDetails(id=d), user=user)]
    if known and not allowed:
        raise HTTPException(status_code=403, detail="you may not read the XComs of the clone_fleet DAGs")
    return allowed


def fleet_data(user: Any, now: dt.datetime | None = None) -> dict[str, Any]:
    """Everything the page shows, as JSON-safe data."""
    from airflow.utils.session import create_session

    now = now or dt.datetime.now(dt.timezone.utc)
    days = ui_days()
    since = now - dt.timedelta(days=max(days, 30))
    with create_session() as session:
        records = data.fleet_records(session, readable_dags(session, user), since)
        ideas = data.idea_records(session, since)
        paused = data.fleet_paused(session)
    base = _base()
    return {"generated": now.isoformat(timespec="seconds"), "days": days, "runs": len(records), "paused": paused,
            "repos": view.fleet_rows(records, now, paused=paused, base=base, cost_per_mtok=cost_per_mtok()),
            "series": view.daily_series(records, now, days), "ideas": view.ideas(ideas)}


def history_data(user: Any, repo: str) -> list[dict[str, Any]]:
    from airflow.utils.session import create_session

    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=max(ui_days(), 30))
    with create_session() as session:
        records = data.fleet_records(session, readable_dags(session, user), since)
    return view.repo_history(records, repo, _base())


def _login(request: Request) -> Response:
    from airflow.api_fastapi.app import get_auth_manager

    try:
        url = get_auth_manager().get_url_login(next_url=str(request.url))
    except TypeError:
        url = get_auth_manager().get_url_login()
    return RedirectResponse(url, status_code=302)


def create_app() -> FastAPI:
    """The plugin's app (built once per api-server worker)."""
    app = FastAPI(title="Clone fleet", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/api/fleet")
    async def fleet_json(request: Request) -> JSONResponse:
        user = await current_user(request)
        return JSONResponse(await run_in_threadpool(fleet_data, user))

    @app.get("/", response_class=HTMLResponse)
    async def fleet_html(request: Request) -> Response:
        try:
            user = await current_user(request)
        except HTTPException as e:
            if e.status_code == 401:
                return _login(request)
            raise
        return HTMLResponse(page.fleet_page(await run_in_threadpool(fleet_data, user), PREFIX))

    @app.get("/repos/{repo}", response_class=HTMLResponse)
    async def repo_html(request: Request, repo: str) -> Response:
        try:
            user = await current_user(request)
        except HTTPException as e:
            if e.status_code == 401:
                return _login(request)
            raise
        return HTMLResponse(page.repo_page(repo, await run_in_threadpool(history_data, user, repo), PREFIX))

    return app
