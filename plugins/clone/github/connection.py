"""Reading the ``github_default`` Airflow connection and the retry knobs, in one place and lazily
(light: no PyGithub import, so DAG files parse without it)."""

from __future__ import annotations

import dataclasses

import os
from collections.abc import Mapping

DEFAULT_API_URL = "https://api.github.com"
#: Status codes a POST/PUT is retried on: the gateway, not GitHub's application, answered.
GATEWAY_ERRORS = frozenset({502, 503, 504})
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PATCH", "DELETE"})


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How transient GitHub failures are retried: ``retries`` more attempts, waits 1 s, 2 s, 4 s, ...
    (with jitter) capped at ``max_wait``; a rate limit waits what its headers say, if at most ``max_wait``."""

    retries: int = 4
    max_wait: float = 60.0
    first_wait: float = 1.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RetryPolicy:
        from clone.config.settings import _Reader  # the one parser of environment knobs

        reader = _Reader(os.environ if env is None else env)
        return cls(retries=reader.integer("CLONE_GITHUB_RETRIES", cls.retries),
                   max_wait=reader.number("CLONE_GITHUB_RETRY_MAX_WAIT_SECONDS", cls.max_wait))


def is_idempotent(method: str, path: str) -> bool:
    """GET-like methods, and asking for a workflow re-run (asking twice re-runs once)."""
    return method in _IDEMPOTENT or (method == "POST" and path.rstrip("/").endswith(("/rerun",
                                                                                      "/rerun-failed-jobs")))


def base_url_of(host: str | None) -> str:
    """The API base URL from a connection's ``host`` (empty: github.com; no scheme: https)."""
    host = (host or "").strip()
    if not host:
        return DEFAULT_API_URL
    return (host if "://" in host else f"https://{host}").rstrip("/")


@dataclasses.dataclass(frozen=True)
class GitHubEndpoint:
    """Where the GitHub API is and the token to call it with. The token never shows in repr."""

    base_url: str
    token: str = dataclasses.field(repr=False, default="")

    @classmethod
    def from_connection(cls, conn) -> GitHubEndpoint:
        """From an Airflow connection: token in ``password``, API base URL in ``host`` (empty: github.com).
        Without a password, an extra with ``app_id`` means GitHub App auth: an installation token
        (:mod:`clone.github.app_auth`, cached until 5 minutes before it expires)."""
        base_url = base_url_of(conn.host)
        if not conn.password:
            from clone.github import app_auth

            extra = getattr(conn, "extra_dejson", None) or {}
            if app_auth.is_app(extra):
                return cls(base_url=base_url, token=app_auth.installation_token(base_url, extra, conn.conn_id))
        return cls(base_url=base_url, token=conn.password or "")


def endpoint_for(conn_id: str) -> GitHubEndpoint:
    """Resolve ``conn_id`` (in a worker task)."""
    from airflow.sdk import BaseHook

    return GitHubEndpoint.from_connection(BaseHook.get_connection(conn_id))


async def aendpoint_for(conn_id: str) -> GitHubEndpoint:
    """Resolve ``conn_id`` from async code (in the triggerer)."""
    from airflow.sdk import BaseHook

    import asyncio

    conn = await BaseHook.aget_connection(conn_id)
    return await asyncio.to_thread(GitHubEndpoint.from_connection, conn)  # App auth asks GitHub for a token
