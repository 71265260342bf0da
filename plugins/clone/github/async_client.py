"""The triggerer's own GitHub client: ``httpx.AsyncClient`` on the triggerer's event loop.

Same requests, headers, answers and retry rules as :class:`clone.github.api.GitHubApi` (the policy,
what is transient and how long to wait come from :func:`clone.github.api.retry_rules`), but every
wait is an ``asyncio.sleep``: a trigger never borrows a thread from the triggerer, and a retry
never blocks the other triggers sharing its loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import tenacity

from clone.github.api import TIMEOUT, ApiAnswer, RetryPolicy, _answer_of, request_headers, retry_rules
from clone.github.connection import GitHubEndpoint


class AsyncGitHubApi:
    """Asynchronous calls to one GitHub API endpoint, retrying transient failures (``retry``)."""

    def __init__(self, endpoint: GitHubEndpoint, client: httpx.AsyncClient | None = None, *,
                 retry: RetryPolicy | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.endpoint = endpoint
        self._client = client or httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)
        self.retry = retry if retry is not None else RetryPolicy.from_env()
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"AsyncGitHubApi({self.endpoint.base_url!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> AsyncGitHubApi:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      json: Any = None, etag: str | None = None, retry: bool = True,
                      idempotent: bool | None = None) -> ApiAnswer:
        """One call, retried on transient failures unless ``retry=False`` (as ``GitHubApi.request``)."""
        url = f"{self.endpoint.base_url}{path}"

        async def send() -> httpx.Response:
            return await self._client.request(method, url, params=params, json=json,
                                              headers=request_headers(self.endpoint, etag))

        if not retry or self.retry.retries <= 0:
            response = await send()
        else:
            retrying = tenacity.AsyncRetrying(sleep=self._sleep,
                                              **retry_rules(self.retry, method, path, idempotent))
            response = await retrying(send)
        return _answer_of(response)
