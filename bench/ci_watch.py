#!/usr/bin/env python
"""CI-wait benchmark: GitHub API requests and worker-slot seconds per CI watch.

    .venv/bin/python bench/ci_watch.py                     # a 5-minute CI run, 30 s polls (the defaults)
    .venv/bin/python bench/ci_watch.py --ci-seconds 60 --json   # a smoke run, plus JSON rows

It watches one simulated GitHub Actions run against the local GitHub API server of the tests
(``tests/fakes/github_api.py``, real HTTP on 127.0.0.1) without waiting minutes: the CI run's
state is a function of a *virtual* clock (seconds since the push), and the watch is driven with
that clock, exactly as Clone runs it:

* **worker** (``deferrable``): the real ``GitHubCIWaitOperator.execute`` (settings, connection
  lookup, one ``poll``) until it raises ``TaskDeferred``; its wall time is measured for real.
  The trigger it defers to is serialized to JSON and rebuilt, like the triggerer does.
* **triggerer**: the loop of ``GitHubCITrigger.run`` (first poll at once, then
  ``min(wait, time to deadline)``) over ``clone.github.ci.apoll(now=<virtual time>)`` on the
  trigger's own async client, with the watch (ETag, cached runs, what it knows about workflows)
  handed over from the worker. The task is deferred meanwhile, so it holds no worker slot: 0
  worker-slot seconds. ``trigger s`` is the real wall time spent in its polls.
* **resume**: the real ``execute_complete`` with the trigger's event (measured for real).

For comparison, ``poke sensor`` is the naive way: the same poll in the worker every poll
interval, without conditional requests (no ETag), holding the worker slot from the first poke to
the verdict (virtual seconds; a real poke sensor sleeps in the slot).

Two timelines (seconds after the push; the worker checks ``--worker-delay`` s after it):

* ``run listed``: the workflow run is listed 1 s after the push, queued for ``--queue-seconds``,
  then in progress; it concludes ``--ci-seconds`` after it was listed. The headline.
* ``run late``: GitHub lists the run only ``--late-seconds`` after the push, so the worker's check
  sees no run yet (and looks up the repo's workflows once to tell "not started" from "no CI").
* ``late red workflow``: as ``run listed``, and a second workflow (red) is listed ``--late-gap`` s
  after the first concluded. The verdict must be ``failure`` (with ``--settle-seconds 0``: missed).

Green is the verdict only after ``--settle-seconds`` (``CLONE_CI_SETTLE_SECONDS``) with the same
complete picture, and after one read of the commit's check suites (see README "CI watching").

Counted requests are the ones that count against GitHub's rate limit (every authenticated answer
but a 304); total includes the 304s. Target (exit status 1 when missed by the headline row): at
most 4 counted requests per watch (3 changed answers of the runs, 1 check-suites read) and 0
worker-slot seconds while waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
for _path in (str(PROJECT / "plugins"), str(PROJECT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from bench.ci_watch_timelines import REPO, SHA, Timeline, fake_class  # noqa: E402 - after sys.path

COUNTED_TARGET = 4  # 3 answers that changed (listed, in progress, completed) + 1 check-suites read
TOKEN = "bench-token-0123456789"


@dataclasses.dataclass
class Row:
    mode: str
    timeline: str
    verdict: str
    counted: int
    total: int
    not_modified: int
    slot_seconds_waiting: float
    worker_seconds: float
    trigger_seconds: float
    ci_done_at: float
    verdict_at: float
    requests: list[str]

    @property
    def meets_target(self) -> bool:
        return self.counted <= COUNTED_TARGET and self.slot_seconds_waiting == 0


def _summarise(gh, mode: str, timeline: Timeline, verdict: str, slot_waiting: float, worker: float,
               verdict_at: float, trigger: float = 0.0) -> Row:
    requests = gh.requests
    assert gh.server_errors == [], gh.server_errors
    return Row(mode=mode, timeline=timeline.name, verdict=verdict, counted=gh.counted_requests,
               total=gh.total_requests, not_modified=sum(r.status == 304 for r in requests),
               slot_seconds_waiting=slot_waiting, worker_seconds=worker, trigger_seconds=trigger,
               ci_done_at=timeline.all_done_at,
               verdict_at=verdict_at,
               requests=[f"{r.path.rsplit('/', 1)[-1]}:{r.status}{'' if r.counted else '(free)'}"
                         for r in requests])


def _use_fake(gh) -> None:
    os.environ["AIRFLOW_CONN_GITHUB_DEFAULT"] = json.dumps(
        {"conn_type": "github", "host": gh.url, "password": TOKEN})


def watch_deferrable(timeline: Timeline, args: argparse.Namespace) -> Row:
    """The operator's first check in the worker, the trigger's polls, the resume."""
    from airflow.sdk.bases.operator import ExecutorSafeguard
    from airflow.sdk.exceptions import TaskDeferred

    from clone.github.async_client import AsyncGitHubApi
    from clone.github.ci import CIWatch, apoll
    from clone.github.connection import GitHubEndpoint
    from clone.operators.ci import GitHubCIWaitOperator
    from clone.triggers.ci import GitHubCITrigger

    with fake_class()(token=TOKEN) as gh:
        gh.add_repo(REPO, workflows=True, start_after_polls=10**9)
        _use_fake(gh)
        operator = GitHubCIWaitOperator(task_id="ci_wait",
                                        push_result={"repo": "probe", "github": REPO, "pushed_sha": SHA,
                                                     "pushed": True, "workdir": "/nonexistent", "branch": "main",
                                                     "base_sha": SHA, "head_sha": SHA, "has_remote": True,
                                                     "push_mode": "direct", "run_id": "bench", "changed": True,
                                                     "entry": {}})
        sentinel = {f"{type(operator).__name__}__sentinel": ExecutorSafeguard.sentinel_value}

        # Worker: the real execute(), as the task runner calls it.
        gh.advance(timeline, args.worker_delay)
        started = time.perf_counter()
        try:
            outcome = operator.execute({}, **sentinel)
            trigger = None
        except TaskDeferred as deferred:
            trigger = deferred.trigger
        worker = time.perf_counter() - started
        verdict_at, in_trigger = args.worker_delay, 0.0

        if trigger is not None:
            # Triggerer: the trigger as stored in the metadata DB, then GitHubCITrigger.run's loop.
            classpath, kwargs = trigger.serialize()
            assert classpath == "clone.triggers.ci.GitHubCITrigger", classpath
            trigger = GitHubCITrigger(**json.loads(json.dumps(kwargs)))
            watch = CIWatch.from_dict(trigger.watch)
            origin = watch.started - args.worker_delay  # epoch of the push on the virtual clock
            t = args.worker_delay + args.handoff_seconds

            async def trigger_loop() -> tuple[dict, float, float]:
                """GitHubCITrigger.run's loop: apoll on its own async client, virtual time between polls."""
                t_, busy = t, 0.0
                async with AsyncGitHubApi(GitHubEndpoint(base_url=gh.url, token=TOKEN)) as api:
                    while True:
                        gh.advance(timeline, t_)
                        began = time.perf_counter()
                        result = await apoll(api, watch, now=origin + t_)
                        busy += time.perf_counter() - began
                        if result.event is not None:
                            return result.event, t_, busy
                        wait = min(result.wait, max(0.0, watch.deadline - (origin + t_)))
                        t_ += max(wait, 0.05)

            event, verdict_at, in_trigger = asyncio.run(trigger_loop())
            # Resume: back in a worker, briefly.
            started = time.perf_counter()
            outcome = operator.execute_complete({}, event)
            worker += time.perf_counter() - started
        return _summarise(gh, "deferrable (check, then trigger)", timeline, outcome["ci"]["status"], 0.0,
                          worker, verdict_at, in_trigger)


def watch_poke(timeline: Timeline, args: argparse.Namespace) -> Row:
    """A naive poke-mode sensor: the same poll every interval in the worker, no conditional requests."""
    from clone.github.api import GitHubApi
    from clone.github.ci import CIWatch, poll
    from clone.github.connection import GitHubEndpoint

    with fake_class()(token=TOKEN) as gh:
        gh.add_repo(REPO, workflows=True, start_after_polls=10**9)
        origin = time.time() - args.worker_delay
        watch = CIWatch(repo=REPO, sha=SHA, deadline=origin + args.worker_delay + 3600,
                        started=origin + args.worker_delay, poll_seconds=args.poll_seconds,
                        settle_seconds=args.settle_seconds)
        t, busy = args.worker_delay, 0.0
        with GitHubApi(GitHubEndpoint(base_url=gh.url, token=TOKEN)) as api:
            while True:
                gh.advance(timeline, t)
                watch.etag = watch.suites_etag = None  # no If-None-Match: every answer is a counted 200
                started = time.perf_counter()
                result = poll(api, watch, now=origin + t)
                busy += time.perf_counter() - started
                if result.event is not None:
                    break
                t += max(result.wait, 0.05)
        held = (t - args.worker_delay) + busy  # slept in the slot between pokes, plus the pokes
        return _summarise(gh, "poke sensor (no ETag)", timeline, result.event["status"], held, held, t)


def timelines(args: argparse.Namespace) -> list[Timeline]:
    listed = Timeline("run listed", 1.0, 1.0 + args.queue_seconds, 1.0 + args.ci_seconds)
    late = Timeline("run late", args.late_seconds, args.late_seconds + args.queue_seconds,
                    args.late_seconds + args.ci_seconds)
    red_late = dataclasses.replace(listed, name="late red workflow",
                                   late_listed_at=listed.done_at + args.late_gap)
    return [listed, late, red_late]


def render(rows: list[Row], args: argparse.Namespace) -> str:
    header = ("mode", "CI timeline", "verdict", "counted", "total", "304s", "slot s waiting",
              "worker s", "trigger s", "CI done", "verdict at", "target")
    body = [(r.mode, r.timeline, r.verdict, str(r.counted), str(r.total), str(r.not_modified),
             f"{r.slot_seconds_waiting:.1f}", f"{r.worker_seconds:.3f}", f"{r.trigger_seconds:.3f}",
             f"{r.ci_done_at:.0f}s",
             f"{r.verdict_at:.0f}s", "met" if r.meets_target else "missed") for r in rows]
    widths = [max(len(cell) for cell in column) for column in zip(header, *body)]

    def line(cells) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths)) + " |"

    out = [f"CI watch of a {args.ci_seconds:.0f} s CI run, poll every {args.poll_seconds:g} s "
           f"(worker checks {args.worker_delay:g} s after the push; trigger starts "
           f"{args.handoff_seconds:g} s later; 'run late' is listed {args.late_seconds:g} s after the push)",
           line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body),
           f"target: at most {COUNTED_TARGET} counted requests per watch and 0 worker-slot seconds while "
           "waiting. 'worker s': deferrable, real wall time in task code (first check + resume; task "
           "process start-up not included); poke, the slot held from first poke to verdict (virtual s)."]
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from clone.config.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ci-seconds", type=float, default=300.0,
                        help="how long the CI run takes, from listed to concluded (default 300)")
    parser.add_argument("--poll-seconds", type=float, default=float(Settings.ci_poll_seconds),
                        help="poll interval (default: CLONE_CI_POLL_SECONDS' default, %(default)s)")
    parser.add_argument("--queue-seconds", type=float, default=10.0,
                        help="how long the run stays queued before it is in progress (default 10)")
    parser.add_argument("--worker-delay", type=float, default=3.0,
                        help="seconds from the push to the worker's first check (default 3)")
    parser.add_argument("--handoff-seconds", type=float, default=1.0,
                        help="seconds from the deferral to the trigger's first poll (default 1)")
    parser.add_argument("--late-seconds", type=float, default=20.0,
                        help="'run late' timeline: seconds from the push until the run is listed "
                             "(default 20)")
    parser.add_argument("--late-gap", type=float, default=5.0,
                        help="'late red workflow' timeline: seconds after the first run concluded until a "
                             "second, red workflow is listed (default 5)")
    parser.add_argument("--settle-seconds", type=float, default=float(Settings.ci_settle_seconds),
                        help="CLONE_CI_SETTLE_SECONDS (default: its default, %(default)s; 0 = no settling)")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON (one line)")
    parser.add_argument("--requests", action="store_true", help="also print each row's request sequence")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-ci-watch-") as home:
        os.environ["AIRFLOW_HOME"] = home  # whatever Airflow writes stays out of ~/airflow
        for name in ("CLONE_CI_TIMEOUT_MINUTES", "CLONE_CI_START_GRACE_SECONDS", "CLONE_GITHUB_CONN_ID",
                     "CLONE_GITHUB_RETRIES", "CLONE_GITHUB_RETRY_MAX_WAIT_SECONDS"):
            os.environ.pop(name, None)
        os.environ["CLONE_CI_POLL_SECONDS"] = str(args.poll_seconds)
        os.environ["CLONE_CI_SETTLE_SECONDS"] = str(args.settle_seconds)
        logging.getLogger("clone").setLevel(logging.WARNING)
        with contextlib.redirect_stdout(sys.stderr):  # Airflow's log lines, if any, stay off the table
            watch_deferrable(Timeline("warm-up", 0, 0, 0), args)  # imports and first connection lookup
            rows = []
            for timeline in timelines(args):
                rows.append(watch_deferrable(timeline, args))
                rows.append(watch_poke(timeline, args))
    print(render(rows, args))
    if args.requests:
        for row in rows:
            print(f"{row.mode} / {row.timeline}: {' '.join(row.requests)}")
    if args.json:
        print(json.dumps([{**dataclasses.asdict(row), "meets_target": row.meets_target} for row in rows]))
    headline = rows[0]
    return 0 if headline.meets_target and headline.verdict == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
