"""The trigger that watches GitHub Actions for one commit without holding a worker slot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TaskFailedEvent, TaskSuccessEvent, TriggerEvent

from clone.github.async_client import AsyncGitHubApi
from clone.github.ci import CIWatch, apoll, event
from clone.github.connection import aendpoint_for

#: CI outcomes that end a ``ci_wait`` task successfully (autofix decides what a failure means).
VERDICTS = ("success", "failure", "no_ci")


class GitHubCITrigger(BaseTrigger):
    """Poll workflow runs for ``watch.sha`` until they conclude, then yield one small event.

    No side effects: it only reads the GitHub API (conditional requests, so unchanged answers
    do not count against the rate limit) with its own async client on the triggerer's event loop
    (bounded retries that sleep with asyncio, never in a borrowed thread), and never outlives
    ``watch.deadline``.

    Two ways to finish, both shaped by an upstream race in Airflow 3.3 (apache/airflow #72716,
    #71580): when a trigger fires before the scheduler has processed the executor's "success" for
    the worker that deferred, and the resumed task is already queued or running, the scheduler
    marks it FAILED although nothing failed.

    * ``end_task`` given (``ci_wait``): the trigger ends the task itself with a
      ``TaskSuccessEvent`` whose ``return_value`` XCom is ``{**end_task, "ci": event}`` (or a
      ``TaskFailedEvent`` on timeout/error). The task never resumes on a worker, so the race has
      nothing to hit.
    * otherwise (``autofix``, which must resume to run the agent): no event before
      ``watch.not_before`` (the deferral time plus ``CLONE_DEFER_SETTLE_SECONDS``), by which the
      scheduler has long processed the worker's exit; retries with idempotent resumption cover the
      rest.
    """

    def __init__(self, conn_id: str, watch: dict[str, Any], end_task: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.watch = watch
        self.end_task = end_task

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("clone.triggers.ci.GitHubCITrigger",
                {"conn_id": self.conn_id, "watch": self.watch, "end_task": self.end_task})

    def _finish(self, verdict: dict[str, Any]) -> TriggerEvent:
        if self.end_task is None:
            return TriggerEvent(verdict)
        self.log.info("CI %s@%s: %s — %s", verdict.get("repo"), str(verdict.get("sha"))[:12],
                      verdict.get("status"), verdict.get("message"))
        for run in verdict.get("runs") or []:
            self.log.info("  run %s %r: %s/%s %s", run.get("id"), run.get("name"), run.get("status"),
                          run.get("conclusion"), run.get("html_url"))
        if verdict.get("status") in VERDICTS:
            return TaskSuccessEvent(xcoms={"return_value": {**self.end_task, "ci": verdict}})
        self.log.error("%s: %s", self.end_task.get("repo"), verdict.get("message"))
        return TaskFailedEvent()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        watch = CIWatch.from_dict(self.watch)
        try:
            endpoint = await aendpoint_for(self.conn_id)
        except Exception as e:
            await asyncio.sleep(max(0.0, watch.not_before - time.time()))
            yield self._finish(event(watch, "error", f"cannot read connection {self.conn_id!r}: {e}"))
            return
        api = AsyncGitHubApi(endpoint)
        # The worker checked just before deferring: the first poll here waits one interval too, and
        # never comes before not_before.
        first = max(watch.poll_seconds, watch.not_before - time.time())
        await asyncio.sleep(max(0.0, min(first, watch.deadline - time.time())))
        try:
            while True:
                result = await apoll(api, watch)
                if result.event is not None:
                    settle = watch.not_before - time.time()
                    if settle > 0:
                        await asyncio.sleep(settle)
                    yield self._finish(result.event)
                    return
                self.log.info("CI %s@%s: %s", watch.repo, watch.sha[:12], result.note)
                wait = min(result.wait, max(0.0, watch.deadline - time.time()))
                await asyncio.sleep(max(wait, 0.05))
        finally:
            await api.aclose()
