"""The CI poll's small GitHub REST client over httpx: conditional requests, rate-limit awareness.

Every call returns an :class:`ApiAnswer`; deciding what a status means is left to the caller. It
never retries: ``clone.github.ci.poll`` backs off between its own calls. One-shot calls (repos,
pulls, merges, re-runs, jobs, logs) go through PyGithub with bounded retries (clone.github.client).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import httpx

from clone.github.connection import GitHubEndpoint, RetryPolicy

__all__ = ["ApiAnswer", "GitHubApi", "RetryPolicy"]  # RetryPolicy: where the one-shot client's knobs live

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(30.0, connect=10.0)
USER_AGENT = "clone-airflow"


@dataclasses.dataclass(frozen=True)
class ApiAnswer:
    status: int
    data: Any = None
    etag: str | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def rate_limit_wait(self, now: float | None = None) -> float | None:
        """Seconds to wait when this answer is a rate limit (403/429), else None."""
        if self.status not in (403, 429):
            return None
        now = time.time() if now is None else now
        retry_after = self.headers.get("retry-after")
        if retry_after and retry_after.strip().isdigit():
            return float(retry_after)
        if self.headers.get("x-ratelimit-remaining") == "0":
            reset = self.headers.get("x-ratelimit-reset", "")
            return max(1.0, float(reset) - now) if reset.strip().isdigit() else 60.0
        message = self.data.get("message", "") if isinstance(self.data, dict) else ""
        if self.status == 429 or "rate limit" in str(message).lower():
            # Secondary limits may come without Retry-After: GitHub says wait at least a minute.
            return 60.0
        return None


class GitHubApi:
    """Synchronous, conditional calls to one GitHub API endpoint, for the CI poll."""

    def __init__(self, endpoint: GitHubEndpoint, client: httpx.Client | None = None) -> None:
        self.endpoint = endpoint
        self._client = client or httpx.Client(timeout=TIMEOUT, follow_redirects=False)

    def __repr__(self) -> str:
        return f"GitHubApi({self.endpoint.base_url!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> GitHubApi:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _headers(self, etag: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/vnd.github+json", "User-Agent": USER_AGENT,
                   "X-GitHub-Api-Version": "2022-11-28"}
        if self.endpoint.token:
            headers["Authorization"] = f"token {self.endpoint.token}"
        if etag:
            headers["If-None-Match"] = etag
        return headers

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json: Any = None, etag: str | None = None, retry: bool = False) -> ApiAnswer:
        """One call (``retry=True`` is refused: this client never retries, its caller backs off).

        Network errors raise httpx errors; HTTP errors come back as answers.
        """
        if retry:
            raise ValueError("GitHubApi does not retry; use clone.github.client for one-shot calls")
        url = f"{self.endpoint.base_url}{path}"
        response = self._client.request(method, url, params=params, json=json, headers=self._headers(etag))
        return _answer_of(response)


def _answer_of(response: httpx.Response) -> ApiAnswer:
    data: Any = None
    if response.content and "json" in response.headers.get("content-type", ""):
        try:
            data = response.json()
        except ValueError:
            data = None
    return ApiAnswer(status=response.status_code, data=data, etag=response.headers.get("etag"),
                     headers={k.lower(): v for k, v in response.headers.items()})
