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
import tenacity

from clone.github.connection import GitHubEndpoint, RetryPolicy, is_idempotent

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


#: Status codes a POST/PUT is retried on: the gateway, not GitHub's application, answered.
GATEWAY_ERRORS = frozenset({502, 503, 504})
#: Network errors with no answer at all, after which a non-idempotent request is retried
#: (a read/write timeout may mean GitHub is still working on it: not retried).
NO_ANSWER_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.RemoteProtocolError,
                 httpx.ReadError)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PATCH", "DELETE"})


def request_headers(endpoint: GitHubEndpoint, etag: str | None = None) -> dict[str, str]:
    """What every API request sends: media type, API version, the token, and the ETag to revalidate."""
    headers = {"Accept": "application/vnd.github+json", "User-Agent": USER_AGENT,
               "X-GitHub-Api-Version": "2022-11-28"}
    if endpoint.token:
        headers["Authorization"] = f"token {endpoint.token}"
    if etag:
        headers["If-None-Match"] = etag
    return headers


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
        return request_headers(self.endpoint, etag)

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


def retry_rules(policy: RetryPolicy, method: str, path: str,
                idempotent: bool | None = None) -> dict[str, Any]:
    """The tenacity arguments (all but ``sleep``) of :class:`RetryPolicy` for one call: what is transient,
    how long to wait (the answer's rate-limit or Retry-After headers first), how it is logged. Shared by
    :class:`GitHubApi` (``tenacity.Retrying``) and the triggerer's async client (``tenacity.AsyncRetrying``)."""
    if idempotent is None:
        idempotent = is_idempotent(method, path)
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

    return {"stop": tenacity.stop_after_attempt(policy.retries + 1), "wait": wait,
            "retry": tenacity.retry_if_exception(transient_error) | tenacity.retry_if_result(transient_answer),
            "before_sleep": before_sleep, "reraise": True,
            "retry_error_callback": lambda state: state.outcome.result()}  # the last answer, or its error


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
