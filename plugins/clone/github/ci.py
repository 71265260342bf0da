"""Watching GitHub Actions for one commit: one poll step and its pure interpretation.

The watch state is small and JSON-serialisable so that the deferrable sensor and its trigger
can hand it to each other. A poll step (:func:`steps`, free of I/O; driven by :func:`poll` in a
worker and :func:`apoll` in the triggerer) does one conditional request for the commit's runs (plus,
once, a look at the repo's workflows; and, when every listed run is green, one for its check suites)
and says either what CI concluded or how long to wait before asking again. When green is the
verdict: :mod:`clone.github.ci_suites`. What a failure was (jobs, steps, log tails) and asking for a
re-run: :mod:`clone.github.ci_evidence`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import httpx

from clone.github.api import ApiAnswer, GitHubApi
from clone.github.ci_suites import GREEN, compact_run, compact_suite, judge_green
# Failure evidence (log tails, re-runs) lives in clone.github.ci_evidence; importable from here too.
from clone.github.ci_evidence import clean_log, failure_report, rerun_failed_jobs, run_attempts  # noqa: F401

if TYPE_CHECKING:
    from clone.github.async_client import AsyncGitHubApi

MAX_ERROR_BACKOFF = 300.0


@dataclasses.dataclass
class CIWatch:
    """What a CI watch knows between polls (serialised into the trigger)."""

    repo: str
    sha: str
    deadline: float
    started: float
    poll_seconds: float = 30.0
    start_grace_seconds: float = 300.0
    etag: str | None = None
    runs: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    has_workflows: bool | None = None
    errors: int = 0
    #: Green only after the picture held this long (0 for watches serialised before it existed).
    settle_seconds: float = 0.0
    #: The commit's check suites (compacted), their ETag; ``has_checks`` False: the token cannot read them.
    suites: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    suites_etag: str | None = None
    has_checks: bool | None = None
    #: When the listed runs and suites were first seen complete and green, and what they were.
    green_since: float | None = None
    green_picture: list[str] = dataclasses.field(default_factory=list)
    #: Epoch seconds before which the trigger yields nothing (see GitHubCITrigger: the deferral race).
    not_before: float = 0.0
    #: Echoed back in the final event, so the operator knows where it was when it resumes (Airflow's
    #: ``dags test`` replaces defer() kwargs with the event instead of merging them).
    echo: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CIWatch:
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclasses.dataclass(frozen=True)
class PollResult:
    """Either a final ``event`` (a small dict) or a ``wait`` in seconds before the next poll."""

    event: dict[str, Any] | None = None
    wait: float = 0.0
    note: str = ""


def interpret(runs: list[dict[str, Any]]) -> str:
    """``running`` until every listed run completed; then ``success`` if all are green, else ``failure``.
    A ``success`` here is only a candidate: see :mod:`clone.github.ci_suites` for when it is the verdict."""
    if any(run.get("status") != "completed" for run in runs):
        return "running"
    return "success" if all(run.get("conclusion") in GREEN for run in runs) else "failure"


def event(watch: CIWatch, status: str, message: str) -> dict[str, Any]:
    return {"status": status, "repo": watch.repo, "sha": watch.sha, "message": message,
            "runs": [compact_run(run) for run in watch.runs], "suites": list(watch.suites), "echo": watch.echo}


@dataclasses.dataclass(frozen=True)
class Call:
    """One GET a poll step needs answered (by :func:`poll`'s client, or :func:`apoll`'s)."""

    path: str
    params: dict[str, Any] | None = None
    etag: str | None = None


#: A poll step: yields the calls it needs, is sent their answers (or thrown their httpx errors).
Steps = Generator[Call, ApiAnswer, PollResult]


def poll(api: GitHubApi, watch: CIWatch, now: float | None = None) -> PollResult:
    """One step of the watch (in a worker); mutates ``watch`` (etags, cached runs and suites, errors).
    Its calls are not retried: poll() backs off between its own calls."""
    gen = steps(watch, time.time() if now is None else now)
    try:
        call = next(gen)
        while True:
            try:
                answer = api.request("GET", call.path, params=call.params, etag=call.etag, retry=False)
            except httpx.HTTPError as e:
                call = gen.throw(e)
            else:
                call = gen.send(answer)
    except StopIteration as stop:
        return stop.value


async def apoll(api: AsyncGitHubApi, watch: CIWatch, now: float | None = None) -> PollResult:
    """:func:`poll` on the triggerer's event loop: the same step, the async client, its bounded retries."""
    gen = steps(watch, time.time() if now is None else now)
    try:
        call = next(gen)
        while True:
            try:
                answer = await api.request("GET", call.path, params=call.params, etag=call.etag)
            except httpx.HTTPError as e:
                call = gen.throw(e)
            else:
                call = gen.send(answer)
    except StopIteration as stop:
        return stop.value


def steps(watch: CIWatch, now: float) -> Steps:
    """The poll step itself, free of I/O."""
    if now >= watch.deadline:
        return PollResult(event=event(watch, "timeout", f"CI did not finish for {watch.sha[:12]} before the "
                                                        "deadline (CLONE_CI_TIMEOUT_MINUTES)"))
    try:
        answer = yield Call(f"/repos/{watch.repo}/actions/runs", {"head_sha": watch.sha, "per_page": 100},
                            watch.etag)
    except httpx.HTTPError as e:
        return _backoff(watch, f"network error: {e}")
    problem = _problem(watch, answer)
    if problem is not None:
        return problem
    watch.errors = 0
    if answer.status != 304:
        watch.etag = answer.etag
        watch.runs = [compact_run(run) for run in (answer.data or {}).get("workflow_runs", [])]
    if not watch.runs:
        return (yield from _no_runs(watch, now))
    state = interpret(watch.runs)
    if state == "running":
        watch.green_since = None
        return PollResult(wait=watch.poll_seconds, note=f"{len(watch.runs)} run(s) in progress")
    extra = ""
    if state == "success":
        if watch.has_checks is not False:
            problem = yield from _read_suites(watch)
            if problem is not None:
                return problem
        judgement = judge_green(watch, now)
        if judgement.state == "running":
            return PollResult(wait=judgement.wait or watch.poll_seconds, note=judgement.note)
        state, extra = judgement.state, judgement.message
    urls = ", ".join(str(run.get("html_url")) for run in watch.runs)
    extra = extra if not extra or extra.startswith(";") else f"; {extra}"
    return PollResult(event=event(watch, state, f"CI {state} for {watch.sha[:12]}: {urls}{extra}"))


def _read_suites(watch: CIWatch) -> Generator[Call, ApiAnswer, PollResult | None]:
    """Refresh ``watch.suites`` (conditional GET); a 403/404 that is no rate limit means: not readable."""
    try:
        answer = yield Call(f"/repos/{watch.repo}/commits/{watch.sha}/check-suites", {"per_page": 100},
                            watch.suites_etag)
    except httpx.HTTPError as e:
        return _backoff(watch, f"network error: {e}")
    if answer.status in (403, 404) and answer.rate_limit_wait() is None:
        watch.has_checks, watch.suites = False, []
        return None
    problem = _problem(watch, answer)
    if problem is not None:
        return problem
    if answer.status != 304:
        watch.has_checks, watch.suites_etag = True, answer.etag
        watch.suites = [compact_suite(s) for s in (answer.data or {}).get("check_suites", [])]
    return None


def _problem(watch: CIWatch, answer: ApiAnswer) -> PollResult | None:
    wait = answer.rate_limit_wait()
    if wait is not None:
        return PollResult(wait=wait, note=f"rate limited ({answer.status}); waiting {wait:.0f}s")
    if answer.status >= 500:
        return _backoff(watch, f"GitHub answered {answer.status}")
    if answer.status in (401, 403, 404):
        message = (answer.data or {}).get("message", "") if isinstance(answer.data, dict) else ""
        return PollResult(event=event(watch, "error", f"GitHub answered {answer.status} for {watch.repo}: "
                                                        f"{message} (check the github_default connection "
                                                        "and the repo's 'github:' mapping)"))
    return None


def _backoff(watch: CIWatch, note: str) -> PollResult:
    watch.errors += 1
    wait = min(watch.poll_seconds * 2 ** (watch.errors - 1), MAX_ERROR_BACKOFF)
    return PollResult(wait=wait, note=f"{note}; retrying in {wait:.1f}s")


def _no_runs(watch: CIWatch, now: float) -> Steps:
    watch.green_since = None
    if watch.has_workflows is None:
        try:
            answer = yield Call(f"/repos/{watch.repo}/actions/workflows", {"per_page": 1})
        except httpx.HTTPError as e:
            return _backoff(watch, f"network error: {e}")
        problem = _problem(watch, answer)
        if problem is not None:
            return problem
        watch.has_workflows = bool((answer.data or {}).get("total_count"))
    if not watch.has_workflows:
        return PollResult(event=event(watch, "no_ci", f"{watch.repo} has no GitHub Actions workflows; "
                                                        "nothing to wait for"))
    if now - watch.started >= watch.start_grace_seconds:
        return PollResult(event=event(watch, "no_ci", f"no workflow run started for {watch.sha[:12]} within "
                                                        f"{watch.start_grace_seconds:.0f}s "
                                                        "(CLONE_CI_START_GRACE_SECONDS); workflows may not "
                                                        "trigger on this branch or paths"))
    return PollResult(wait=watch.poll_seconds, note="no run yet for this commit; CI has not started")
