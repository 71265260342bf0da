"""When "every listed run is green" may be called green: the commit's check suites, then a settle period.

GitHub lists a commit's workflow runs as they register, and a workflow can register after the others
have finished (a ``workflow_run`` chain, a busy Actions queue, another app's checks). So a green
picture of the listed runs is only a candidate. It becomes the verdict when

1. every check suite of the commit (``GET /repos/{o}/{r}/commits/{sha}/check-suites``, any app) is
   ``completed``. A suite of another app that concluded red makes the verdict a failure. A suite that
   is not completed and has no check run yet is waited for within the start grace
   (``CLONE_CI_START_GRACE_SECONDS`` from the start of the watch): GitHub creates such a suite for
   every installed checks app on each push, and an app that never reports leaves it queued for ever,
   so after the grace it is ignored and named in the verdict's message. Completed suites of GitHub
   Actions are judged by their runs, which the poll lists;
2. and that picture (the same runs and suites, all complete and green) has held for
   ``CLONE_CI_SETTLE_SECONDS`` (polled again at its end): a workflow that registers within it makes
   the watch wait for it, or turns the verdict red.

A red listed run is final at once (a late workflow cannot make it green). When the token may not read
check suites (403/404: a fine-grained token without "Checks: read", an old GitHub Enterprise), rule 2
alone applies and the message says so.
"""

from __future__ import annotations

import dataclasses
from typing import Any

GREEN = frozenset({"success", "neutral", "skipped"})
ACTIONS_APP = "github-actions"


@dataclasses.dataclass(frozen=True)
class Judgement:
    """``state``: ``running`` (with ``note``), ``failure`` or ``success``; ``message`` explains a verdict."""

    state: str
    note: str = ""
    message: str = ""
    wait: float | None = None


def compact_run(run: dict[str, Any]) -> dict[str, Any]:
    """What a watch keeps of a workflow run."""
    return {key: run.get(key) for key in ("id", "name", "status", "conclusion", "html_url", "run_attempt")}


def compact_suite(suite: dict[str, Any]) -> dict[str, Any]:
    app = suite.get("app") or {}
    return {"id": suite.get("id"), "app": app.get("slug") or app.get("name") or "unknown app",
            "status": suite.get("status"), "conclusion": suite.get("conclusion"),
            "check_runs": suite.get("latest_check_runs_count")}


def picture(runs: list[dict[str, Any]], suites: list[dict[str, Any]]) -> list[str]:
    """What a settle period must see unchanged: each run (and attempt) and each suite, with its outcome."""
    return sorted([f"run:{r.get('id')}:{r.get('run_attempt')}:{r.get('conclusion')}" for r in runs]
                  + [f"suite:{s.get('id')}:{s.get('conclusion')}" for s in suites])


def judge_suites(suites: list[dict[str, Any]], waited: float, grace: float) -> Judgement:
    """Rule 1 over the commit's suites (compacted), ``waited`` seconds into the watch."""
    pending, ignored, red = [], [], []
    for suite in suites:
        if suite.get("status") != "completed":
            if not suite.get("check_runs") and waited >= grace:
                ignored.append(suite)
            else:
                pending.append(suite)
        elif suite.get("app") != ACTIONS_APP and suite.get("conclusion") not in GREEN:
            red.append(suite)
    if red:
        names = ", ".join(f"{s['app']} ({s.get('conclusion')})" for s in red)
        return Judgement("failure", message=f"check suite(s) not green: {names}")
    if pending:
        names = ", ".join(f"{s['app']} {s.get('status')}" for s in pending)
        return Judgement("running", note=f"all listed runs green; waiting for {len(pending)} check "
                                         f"suite(s) not complete: {names}")
    message = ""
    if ignored:
        names = ", ".join(str(s["app"]) for s in ignored)
        message = (f"; ignored {len(ignored)} check suite(s) with no check run after {grace:.0f}s "
                   f"(CLONE_CI_START_GRACE_SECONDS): {names}")
    return Judgement("success", message=message)


def judge_green(watch: Any, now: float) -> Judgement:
    """Rules 1 and 2 for a watch whose listed runs are all complete and green (``watch.suites`` fresh)."""
    suites = judge_suites(watch.suites, now - watch.started, watch.start_grace_seconds) \
        if watch.has_checks is not False else Judgement("success", message="; check suites unreadable "
                                                                           "(settle period only)")
    if suites.state != "success":
        watch.green_since, watch.green_picture = None, []
        return suites
    seen = picture(watch.runs, watch.suites)
    if watch.green_since is None or seen != watch.green_picture:
        watch.green_since, watch.green_picture = now, seen
    left = watch.green_since + watch.settle_seconds - now
    if left > 0:
        return Judgement("running", wait=min(watch.poll_seconds, left),
                         note=f"{len(watch.runs)} run(s) green; settling {left:.0f}s more for late "
                              "workflows (CLONE_CI_SETTLE_SECONDS)")
    return suites
