"""A small GitHub REST client over httpx for the CI poll: conditional requests, rate-limit awareness.

One-shot calls (repos, pulls, merges, re-runs, jobs, logs) go through PyGithub (clone.github.client).

Every call returns an :class:`ApiAnswer`; deciding what a status means is left to the caller.
Transient failures are retried here, once for every caller (see :class:`RetryPolicy`):

- idempotent calls (GET, PATCH, a workflow re-run) on any 5xx and any network error;
- other calls (POST create repo / open PR, PUT merge) only when the request cannot have been
  acted on or the gateway said so: a connection that failed or closed before any answer
  (not a read timeout), and 502/503/504. Their callers look the object up when a retried
  create answers 422 "already exists" or a retried merge finds the PR already merged;
- every call on a rate limit (403/429 with Retry-After or X-RateLimit-Reset), waiting what the
  headers say when that is at most the policy's longest wait; a longer limit is returned at once.

The CI poll backs off on its own (``retry=False``): it is not retried twice.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import tenacity

from clone.github.connection import GATEWAY_ERRORS, GitHubEndpoint, RetryPolicy, is_idempotent

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(30.0, connect=10.0)
USER_AGENT = "clone-airflow"


@dataclasses.dataclass(frozen=True)
class ApiAnswer:
    status: int
    data: Any = None
    etag: str | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    attempts: int = 1  # how many requests it took (retries included)

    @property
    def tried(self) -> str:
        """`` after N attempts`` when the call was retried, else empty: for error messages."""
        return f" after {self.attempts} attempts" if self.attempts > 1 else ""

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


#: Network errors with no answer at all, after which a non-idempotent request is retried
#: (a read/write timeout may mean GitHub is still working on it: not retried).
NO_ANSWER_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.RemoteProtocolError,
                 httpx.ReadError)


class GitHubApi:
    """Synchronous calls to one GitHub API endpoint, retrying transient failures (``retry``)."""

    def __init__(self, endpoint: GitHubEndpoint, client: httpx.Client | None = None, *,
                 retry: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.endpoint = endpoint
        self._client = client or httpx.Client(timeout=TIMEOUT, follow_redirects=False)
        self.retry = retry if retry is not None else RetryPolicy.from_env()
        self._sleep = sleep

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
                json: Any = None, etag: str | None = None, retry: bool = True,
                idempotent: bool | None = None) -> ApiAnswer:
        """One call, retried on transient failures unless ``retry=False``.

        Network errors raise httpx errors (the last one, once the retries are spent); HTTP errors
        come back as answers (the last one), with ``attempts`` saying how many requests it took.
        """
        url = f"{self.endpoint.base_url}{path}"

        def send() -> httpx.Response:
            return self._client.request(method, url, params=params, json=json, headers=self._headers(etag))

        response, attempts = self._send(send, method, path, retry=retry, idempotent=idempotent)
        return dataclasses.replace(_answer_of(response), attempts=attempts)

    def _send(self, send: Callable[[], httpx.Response], method: str, path: str, *, retry: bool = True,
              idempotent: bool | None = None) -> tuple[httpx.Response, int]:
        if idempotent is None:
            idempotent = is_idempotent(method, path)
        if not retry or self.retry.retries <= 0:
            return send(), 1
        policy = self.retry
        backoff = tenacity.wait_exponential_jitter(initial=policy.first_wait, max=policy.max_wait,
                                                   jitter=policy.first_wait / 2)

        def transient_error(error: BaseException) -> bool:
            return isinstance(error, NO_ANSWER_ERRORS if not idempotent else httpx.TransportError)

        def transient_answer(response: httpx.Response) -> bool:
            wait = _header_wait(response)
            if _answer_of(response).rate_limit_wait() is not None:
                return wait is not None and wait <= policy.max_wait
            if response.status_code in GATEWAY_ERRORS or (idempotent and 500 <= response.status_code < 600):
                return wait is None or wait <= policy.max_wait
            return False

        def wait(state: tenacity.RetryCallState) -> float:
            if not state.outcome.failed:
                header = _header_wait(state.outcome.result())
                if header is not None:
                    return header
            return min(backoff(state), policy.max_wait)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            outcome = state.outcome
            what = (f"{type(outcome.exception()).__name__}: {outcome.exception()}" if outcome.failed
                    else f"answered {outcome.result().status_code}")
            log.warning("github: %s %s %s; retrying in %.1fs (attempt %d of %d)", method, path, what,
                        state.next_action.sleep, state.attempt_number + 1, policy.retries + 1)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(policy.retries + 1), wait=wait, sleep=self._sleep,
            retry=tenacity.retry_if_exception(transient_error) | tenacity.retry_if_result(transient_answer),
            before_sleep=before_sleep, reraise=True,
            retry_error_callback=lambda state: state.outcome.result())  # the last answer, or its error
        attempts = 0

        def counted() -> httpx.Response:
            nonlocal attempts
            attempts += 1
            return send()

        return retrying(counted), attempts


def _answer_of(response: httpx.Response) -> ApiAnswer:
    data: Any = None
    if response.content and "json" in response.headers.get("content-type", ""):
        try:
            data = response.json()
        except ValueError:
            data = None
    return ApiAnswer(status=response.status_code, data=data, etag=response.headers.get("etag"),
                     headers={k.lower(): v for k, v in response.headers.items()})


def _header_wait(response: httpx.Response) -> float | None:
    """What the answer says to wait: a rate limit's Retry-After or reset, or a 5xx's Retry-After."""
    wait = _answer_of(response).rate_limit_wait()
    if wait is None and response.status_code >= 500:
        retry_after = response.headers.get("retry-after", "").strip()
        wait = float(retry_after) if retry_after.isdigit() else None
    return wait
