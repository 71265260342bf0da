"""One-shot GitHub calls through PyGithub, built from the provider's ``GithubHook``.

The hook reads the Airflow connection (token in ``password``, or GitHub App auth in ``extra``;
``host`` is the API base URL for GitHub Enterprise). :class:`GitHubClient` re-wraps that auth in a
``github.Github`` with Clone's timeout and :class:`CloneRetry`, PyGithub's ``GithubRetry`` bounded
by :class:`RetryPolicy`:

- idempotent calls (GET, PATCH, a workflow re-run) are retried on any 5xx and any network error;
- other calls (POST create repo / open PR, PUT merge) only when the request cannot have been acted
  on or the gateway said so: a connection that failed or closed before any answer (not a read
  timeout), and 502/503/504. Their callers look the object up when a retried create answers 422
  "already exists" or a retried merge finds the PR already merged;
- every call on a rate limit (403/429 with Retry-After or X-RateLimit-Reset), waiting what the
  headers say when that is at most the policy's longest wait; a longer limit fails at once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from github import Auth, Github, GithubException, GithubRetry, RateLimitExceededException
from urllib3.exceptions import MaxRetryError, ReadTimeoutError, ResponseError

from clone.errors import GitHubError
from clone.github.connection import DEFAULT_API_URL, GATEWAY_ERRORS, RetryPolicy, base_url_of, is_idempotent

__all__ = ["DEFAULT_API_URL", "CloneRetry", "GitHubClient", "RetryPolicy", "failure", "is_transient",
           "message_of"]

log = logging.getLogger(__name__)

USER_AGENT = "clone-airflow"
TIMEOUT_SECONDS = 30
_ALL_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PATCH", "DELETE", "POST", "PUT"})
#: Secondary rate limits without Retry-After: GitHub says wait at least a minute.
SECONDARY_RATE_WAIT = 60.0


class CloneRetry(GithubRetry):
    """PyGithub's rate-limit-aware retry, bounded by a :class:`RetryPolicy` and told which calls
    may be repeated. ``sleep`` is injectable so that tests can record the waits."""

    def __init__(self, policy: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 **kwargs: Any) -> None:
        self.policy = policy or RetryPolicy()
        self._sleeper = sleep
        kwargs.setdefault("total", max(0, self.policy.retries))
        kwargs.setdefault("allowed_methods", _ALL_METHODS)
        kwargs.setdefault("status_forcelist", [*range(500, 600), 429])
        kwargs.setdefault("raise_on_status", False)  # the last answer goes back to PyGithub, which raises
        kwargs.setdefault("redirect", 0)
        kwargs.setdefault("raise_on_redirect", False)
        kwargs.pop("secondary_rate_wait", None)
        kwargs.pop("max_rate_limit_wait", None)
        super().__init__(secondary_rate_wait=SECONDARY_RATE_WAIT, max_rate_limit_wait=self.policy.max_wait,
                         **kwargs)

    def new(self, **kwargs: Any) -> CloneRetry:
        kwargs.update(policy=self.policy, sleep=self._sleeper)
        return super().new(**kwargs)

    def _give_up(self, url: str | None, pool, why: str):
        return MaxRetryError(pool, url or "", ResponseError(why))  # type: ignore[arg-type]

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        path = (url or "").split("?", 1)[0]
        idempotent = is_idempotent(method or "", path)
        if error is not None and isinstance(error, ReadTimeoutError) and not idempotent:
            raise error  # GitHub may still be acting on it: never sent twice
        if response is not None:
            wait = self.get_retry_after(response)
            if response.status == 429 and wait is None:
                wait = SECONDARY_RATE_WAIT
            if wait is not None and wait > self.policy.max_wait:
                log.warning("github: %s %s answered %s asking to wait %.0fs, more than "
                            "CLONE_GITHUB_RETRY_MAX_WAIT_SECONDS=%.0f; not waiting", method, path,
                            response.status, wait, self.policy.max_wait)
                raise self._give_up(url, _pool, "wait beyond the policy")
            if not idempotent and response.status >= 500 and response.status not in GATEWAY_ERRORS:
                raise self._give_up(url, _pool, "GitHub itself failed; it may have acted on the request")
            retry = super().increment(method, url, response, error, _pool, _stacktrace)
            if response.status == 429 and self.get_retry_after(response) is None:
                retry.get_backoff_time = lambda: SECONDARY_RATE_WAIT  # type: ignore[method-assign]
        else:
            retry = super().increment(method, url, response, error, _pool, _stacktrace)
        what = f"answered {response.status}" if response is not None else f"{type(error).__name__}: {error}"
        log.warning("github: %s %s %s; retrying (attempt %d of %d)", method, path, what,
                    len(retry.history) + 1, self.policy.retries + 1)
        return retry

    def get_backoff_time(self) -> float:
        """1 s, 2 s, 4 s, ... (``first_wait`` doubling, with jitter) capped at ``max_wait``."""
        attempts = len(self.history)
        if attempts == 0:
            return 0.0
        first = self.policy.first_wait
        return min(first * 2 ** (attempts - 1) + random.uniform(0, first / 2), self.policy.max_wait)

    def sleep(self, response=None) -> None:
        wait = self.get_retry_after(response) if response is not None else None
        if wait is None:
            wait = self.get_backoff_time()
        if wait > 0:
            self._sleeper(wait)


class GitHubClient:
    """A ``github.Github`` (:attr:`github`) plus a token-free session for pre-signed downloads."""

    def __init__(self, base_url: str, auth: Auth.Auth | None, *, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep, timeout: int = TIMEOUT_SECONDS,
                 throttle: bool = True) -> None:
        self.base_url = base_url_of(base_url)
        self.retry = retry if retry is not None else RetryPolicy.from_env()
        self._make_retry = lambda: CloneRetry(self.retry, sleep)
        throttling = {} if throttle else {"seconds_between_requests": None, "seconds_between_writes": None}
        self.github = Github(auth=auth, base_url=self.base_url, timeout=timeout, user_agent=USER_AGENT,
                             retry=self._make_retry(), lazy=True, **throttling)
        self._timeout = timeout
        self._downloads: requests.Session | None = None

    @classmethod
    def for_token(cls, base_url: str, token: str, **kwargs: Any) -> GitHubClient:
        return cls(base_url, Auth.Token(token) if token else None, **kwargs)

    @classmethod
    def for_connection(cls, conn_id: str, **kwargs: Any) -> GitHubClient:
        """From the Airflow connection ``conn_id``, read by the provider's GithubHook (in a worker task)."""
        from airflow.providers.github.hooks.github import GithubHook

        try:
            hook = GithubHook(github_conn_id=conn_id)
        except ValueError as e:
            raise GitHubError(f"Airflow connection {conn_id!r}: {e} (set its password to a GitHub token)") from e
        conn = hook.get_connection(conn_id)
        return cls(conn.host or "", hook.get_conn().requester.auth, **kwargs)

    def __repr__(self) -> str:
        return f"GitHubClient({self.base_url!r})"

    def close(self) -> None:
        self.github.close()
        if self._downloads is not None:
            self._downloads.close()

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def download_text(self, url: str) -> str:
        """GET a pre-signed URL (a job log) with no token, retried like every other call."""
        if self._downloads is None:
            self._downloads = requests.Session()
            self._downloads.mount("http://", HTTPAdapter(max_retries=self._make_retry()))
            self._downloads.mount("https://", HTTPAdapter(max_retries=self._make_retry()))
            self._downloads.headers["User-Agent"] = USER_AGENT
        response = self._downloads.get(url, timeout=self._timeout)
        if response.status_code != 200:
            raise GitHubError(f"downloading {url.split('?', 1)[0]} answered {response.status_code}")
        return response.text


def message_of(e: GithubException) -> str:
    """GitHub's message and its listed errors, for error messages."""
    data = e.data if isinstance(e.data, dict) else {}
    parts = [str(data.get("message") or (e.data if isinstance(e.data, str) and e.data else "no message"))]
    for error in data.get("errors") or []:
        if isinstance(error, dict):
            parts.append(str(error.get("message") or f"{error.get('field')} {error.get('code')}"))
        else:
            parts.append(str(error))
    return "; ".join(parts)


def is_transient(e: BaseException) -> bool:
    """A network error, a 5xx or a rate limit: trying again later may work."""
    if isinstance(e, requests.RequestException | RateLimitExceededException):
        return True
    if isinstance(e, GithubException):
        headers = {k.lower(): v for k, v in (e.headers or {}).items()}
        return (e.status or 0) >= 500 or e.status == 429 or (
            e.status == 403 and ("retry-after" in headers or headers.get("x-ratelimit-remaining") == "0"))
    return False


def _attempts(what: str, e: GithubException, retry: RetryPolicy) -> int:
    """How many requests a failed call took: CloneRetry retries a 5xx until the policy is spent when
    the call may be repeated (any 5xx for GET-like calls, 502/503/504 for others), else not at all."""
    method, _, path = what.partition(" ")
    status = e.status or 0
    headers = {k.lower(): v for k, v in (e.headers or {}).items()}
    asked = headers.get("retry-after", "").strip()
    if asked.isdigit() and float(asked) > retry.max_wait:
        return 1
    if status in GATEWAY_ERRORS or (status >= 500 and is_idempotent(method, path)):
        return max(0, retry.retries) + 1
    return 1


def failure(what: str, e: Exception, retry: RetryPolicy) -> GitHubError:
    """``e`` (from PyGithub or requests) as a GitHubError saying what was asked (``"METHOD path"``),
    how many attempts it took and what came back."""
    if isinstance(e, GithubException):
        attempts = _attempts(what, e, retry)
        tried = f" after {attempts} attempts" if attempts > 1 else ""
        return GitHubError(f"{what} answered {e.status}{tried}: {message_of(e)}")
    return GitHubError(f"{what}: GitHub API unreachable ({type(e).__name__}: {e}; "
                       f"CLONE_GITHUB_RETRIES={retry.retries})")
