"""A small GitHub REST client over httpx: conditional requests, rate-limit awareness, job logs.

Every call returns an :class:`ApiAnswer`; deciding what a status means is left to the caller
(the CI poller retries 5xx, waits out rate limits, gives up on 401/404).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import httpx

from clone.errors import GitHubError
from clone.github.connection import GitHubEndpoint

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
    """Synchronous calls to one GitHub API endpoint."""

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
                json: Any = None, etag: str | None = None) -> ApiAnswer:
        """One request. Network errors raise httpx errors; HTTP errors come back as answers."""
        response = self._client.request(method, f"{self.endpoint.base_url}{path}", params=params, json=json,
                                        headers=self._headers(etag))
        data: Any = None
        if response.content and "json" in response.headers.get("content-type", ""):
            try:
                data = response.json()
            except ValueError:
                data = None
        return ApiAnswer(status=response.status_code, data=data, etag=response.headers.get("etag"),
                         headers={k.lower(): v for k, v in response.headers.items()})

    def get_json(self, path: str, **params: Any) -> Any:
        """GET that must succeed; raises GitHubError naming the path and the answer."""
        answer = self.request("GET", path, params=params or None)
        if not answer.ok:
            message = (answer.data or {}).get("message") if isinstance(answer.data, dict) else None
            raise GitHubError(f"GET {path} answered {answer.status}: {message or 'no message'}")
        return answer.data

    def download_job_log(self, repo: str, job_id: int) -> str:
        """A job's plain-text log. GitHub answers 302 to a pre-signed URL that must get no token."""
        path = f"/repos/{repo}/actions/jobs/{job_id}/logs"
        response = self._client.get(f"{self.endpoint.base_url}{path}", headers=self._headers())
        if response.status_code in (301, 302, 303, 307, 308):
            location = response.headers.get("location", "")
            response = self._client.get(location, headers={"User-Agent": USER_AGENT}, follow_redirects=True)
        if response.status_code != 200:
            raise GitHubError(f"GET {path} answered {response.status_code}")
        return response.text
