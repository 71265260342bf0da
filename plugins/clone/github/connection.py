"""Reading the ``github_default`` Airflow connection, in one place and lazily."""

from __future__ import annotations

import dataclasses

from clone.github.client import DEFAULT_API_URL, base_url_of

__all__ = ["DEFAULT_API_URL", "GitHubEndpoint", "aendpoint_for", "endpoint_for"]


@dataclasses.dataclass(frozen=True)
class GitHubEndpoint:
    """Where the GitHub API is and the token to call it with. The token never shows in repr."""

    base_url: str
    token: str = dataclasses.field(repr=False, default="")

    @classmethod
    def from_connection(cls, conn) -> GitHubEndpoint:
        """From an Airflow connection: token in ``password``, API base URL in ``host`` (empty: github.com)."""
        return cls(base_url=base_url_of(conn.host), token=conn.password or "")


def endpoint_for(conn_id: str) -> GitHubEndpoint:
    """Resolve ``conn_id`` (in a worker task)."""
    from airflow.sdk import BaseHook

    return GitHubEndpoint.from_connection(BaseHook.get_connection(conn_id))


async def aendpoint_for(conn_id: str) -> GitHubEndpoint:
    """Resolve ``conn_id`` from async code (in the triggerer)."""
    from airflow.sdk import BaseHook

    return GitHubEndpoint.from_connection(await BaseHook.aget_connection(conn_id))
