"""How long each task of a chain may run in a worker, and who goes first when slots are scarce.

Airflow applies ``execution_timeout`` to each execution of a task (a resumed deferrable task gets
the full budget again), so each budget covers what one execution can do, derived from the
documented per-step timeouts (as seen when the DAG file is parsed), plus a margin for git work
and queueing inside the task. It is a backstop: the runner's own timeouts fire first.
"""

from __future__ import annotations

import datetime as dt

from clone.config.settings import Settings

#: Minutes for what a task does besides its agent and checks (clone, fetch, push, API calls).
MARGIN_MINUTES = 30
#: Repairs before fresh work: a red branch's autofix is scheduled ahead of new passes in the pool.
AUTOFIX_PRIORITY = 100
PASS_PRIORITY = 1


def execution_timeouts(settings: Settings) -> dict[str, dt.timedelta]:
    """``execution_timeout`` per task id of the fleet DAG."""
    agent, checks = settings.agent_timeout_minutes, settings.verify_timeout_minutes
    minutes = {
        "discover": MARGIN_MINUTES,
        # the pass and one verification fix, checks at baseline, after the pass and after the fix
        "agent_pass": 2 * agent + 4 * checks + MARGIN_MINUTES,
        "push": MARGIN_MINUTES,
        "ci_wait": MARGIN_MINUTES,  # the worker's first check only; the trigger does the waiting
        # one agent run and a re-check of a rebase per execution (each resumption starts afresh)
        "autofix": agent + 2 * checks + MARGIN_MINUTES,
        # one re-check of a rebase onto a moved branch per execution (each resumption starts afresh)
        "land": checks + MARGIN_MINUTES,
        "summary": MARGIN_MINUTES,
    }
    return {task: dt.timedelta(minutes=value) for task, value in minutes.items()}
