"""The trigger that watches GitHub Actions for one commit without holding a worker slot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from clone.github.api import GitHubApi
from clone.github.ci import CIWatch, event, poll
from clone.github.connection import aendpoint_for


class GitHubCITrigger(BaseTrigger):
    """Poll workflow runs for ``watch.sha`` until they conclude, then yield one small event.

    No side effects: it only reads the GitHub API (conditional requests, so unchanged answers
    do not count against the rate limit) and never outlives ``watch.deadline``.
    """

    def __init__(self, conn_id: str, watch: dict[str, Any]) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.watch = watch

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("clone.triggers.ci.GitHubCITrigger", {"conn_id": self.conn_id, "watch": self.watch})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        watch = CIWatch.from_dict(self.watch)
        try:
            endpoint = await aendpoint_for(self.conn_id)
        except Exception as e:
            yield TriggerEvent(event(watch, "error", f"cannot read connection {self.conn_id!r}: {e}"))
            return
        api = GitHubApi(endpoint)
        # The worker checked just before deferring: the first poll here waits one interval too.
        await asyncio.sleep(max(0.0, min(watch.poll_seconds, watch.deadline - time.time())))
        try:
            while True:
                result = await asyncio.to_thread(poll, api, watch)
                if result.event is not None:
                    yield TriggerEvent(result.event)
                    return
                self.log.info("CI %s@%s: %s", watch.repo, watch.sha[:12], result.note)
                wait = min(result.wait, max(0.0, watch.deadline - time.time()))
                await asyncio.sleep(max(wait, 0.05))
        finally:
            api.close()
