"""The fleet DAG's ``summary`` task: one row per repo from its chain's task states and last result, why a
step skipped, the run's incidents and warnings, set as the DAG run's note; it fails the run when a repo
failed."""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import TriggerRule, get_current_context, task

from clone.config.params import run_settings
from clone.config.settings import Settings
from clone.errors import CloneError, ConfigError
from clone.operators.ci import xcom_dict
from clone.state import budget, incident_log, kept, lease, lease_store
from clone.fleet.repos_file import RepoEntry
from clone.work.workspace import auth_for, remote_url_of
from clone.work.chain import ChainResult, ChainResultError
from clone.workflow.controls import fleet_paused
from clone.notify.send import notify_fleet_run
from clone.workflow.fleet_record import DISABLED_KEY, ERROR_KEY, PROBLEMS_KEY, RECORD_KEY, fleet_record, headline
from clone.workflow.run_note import set_run_note, skip_reasons
from clone.workflow.summary import CHAIN, first_skipped, known_reason, render_table, repo_rows, warnings

log = logging.getLogger(__name__)

#: The summary's XCom key for its rows (pushed before it can fail; the next run compares skips with it).
ROWS_KEY = "rows"


def last_results(ti: Any, count: int, states: dict[str, Any]) -> list[ChainResult | None]:
    """Per repo, the chain result of the last task of its chain that succeeded (each adds to the previous);
    a value that is not a chain result is logged and counts as none."""
    results: list[ChainResult | None] = [None] * count
    for step in reversed(CHAIN):
        wanted = [i for i, r in enumerate(results) if r is None and states.get(f"repo.{step}_{i}") == "success"]
        if wanted:
            for index, value in zip(wanted, ti.xcom_pull(task_ids=f"repo.{step}", map_indexes=wanted)):
                try:
                    results[index] = ChainResult.from_json(xcom_dict(value))
                except ChainResultError as e:
                    log.warning("repo.%s[%d] returned no usable chain result: %s", step, index, e)
    return results


def skip_messages(ti: Any, repos: list[dict[str, Any]], states: dict[str, Any],
                  results: list[ChainResult | None], settings: Settings) -> dict[int, str]:
    """Per repo index, why its chain's first skipped step skipped. What follows from the chain's result
    (no change, dry run, green CI) is said at once; the rest (kill switch, lease, stall, deadline) is the
    skip's own message, read from the task's log through the REST API (the Task SDK keeps no other record
    of it), else the kill switch if it is on now."""
    wanted = {index: step for index in range(len(repos)) if (step := first_skipped(states, index))}
    messages = {}
    for index, step in wanted.items():
        known = known_reason(step, results[index], dry_run=settings.dry_run, paused=False)
        if known:
            messages[index] = known
    unknown = [(f"repo.{wanted[i]}", i) for i in wanted if i not in messages]
    if not unknown:
        return messages
    found, why_not = skip_reasons(ti.dag_id, ti.run_id, unknown)
    if why_not:
        log.warning("skip reasons: %s; the summary says what it can tell by itself", why_not)
    paused = fleet_paused()
    for task_id, index in unknown:
        message = found.get((task_id, index)) or known_reason(wanted[index], results[index],
                                                              dry_run=settings.dry_run, paused=paused)
        if message:
            messages[index] = message
    return messages


def previous_summary(ti: Any) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The rows of this DAG's previous run's summary (by logical date) and that run's id, if any."""
    try:
        previous = ti.get_previous_dagrun()
        if previous is None:
            log.info("no previous run to compare skips with (this run has no logical date, or is the first)")
            return None, None
        rows = ti.xcom_pull(task_ids="summary", key=ROWS_KEY, run_id=previous.run_id)
    except Exception as e:  # noqa: BLE001 - the comparison is advice; the summary itself must still finish
        log.warning("could not read the previous run's summary: %r", e)
        return None, None
    return (list(rows) if rows else None), previous.run_id


@task(task_id="summary", trigger_rule=TriggerRule.ALL_DONE)
def summary(repos: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Log one row per repo with the state of each link of its chain and why a step skipped, warn about
    runs that did nothing, release the repos, report failures."""
    context = get_current_context()
    ti = context["ti"]
    settings = run_settings(context)
    if repos is None:
        error = ti.xcom_pull(task_ids="discover", key=ERROR_KEY)
        message = (f"discover failed: {error}" if error else
                   "discover did not produce the fleet (it failed); see the discover task's log")
        why_not = set_run_note(ti.dag_id, ti.run_id, f"FAILED: {message}")
        if why_not:
            log.warning("the error was not set as the DAG run's note: %s", why_not)
        raise CloneError(message)
    for repo in repos:  # the leases on the repos' remotes, wherever this task runs
        try:
            entry = RepoEntry.from_dict(repo)
            url = remote_url_of(entry)
            lease_store.use_remote(entry.name, url, auth_for(entry, settings, url) if url else None)
        except ConfigError as e:
            log.warning("%s: its lease on the remote is not released here (%s)",
                        repo.get("name", "?") if isinstance(repo, dict) else "?", e)
    released = lease.release_all(settings.workspace, ti.run_id)
    if released:
        log.info("released %d repo lease(s)", len(released))
    dropped = budget.forget(settings.workspace, ti.run_id)  # its passes are over; only they read it
    if dropped:
        log.info("token ledger: dropped the run's %d entr%s", dropped, "y" if dropped == 1 else "ies")
    states = ti.get_task_states(dag_id=ti.dag_id, task_group_id="repo", run_ids=[ti.run_id])
    run_states = states.get(ti.run_id, {})
    results = last_results(ti, len(repos), run_states)
    rows = repo_rows(repos, run_states, results, skip_reasons=skip_messages(ti, repos, run_states, results,
                                                                             settings))
    ti.xcom_push(key=ROWS_KEY, value=rows)  # for the next run's comparison, also when this one fails
    notes = [f"WARNING: repos.yaml: skipped a bad entry: {str(problem)[:240]}"
             for problem in ti.xcom_pull(task_ids="discover", key=PROBLEMS_KEY) or []]
    notes += warnings(rows, *previous_summary(ti)) + [
        f"INCIDENT {item['repo']}: {item['title']} — {item['where']}"
        for item in incident_log.recorded(settings.workspace, ti.run_id)]
    for note in notes:
        log.warning("%s", note)
    record = fleet_record(rows, [r.to_json() if r else None for r in results],
                          disabled=ti.xcom_pull(task_ids="discover", key=DISABLED_KEY) or [],
                          budget_tokens=settings.max_tokens_per_run, paused=fleet_paused())
    ti.xcom_push(key=RECORD_KEY, value=record)  # what the Clone fleet page reads
    notify_fleet_run(ti, record, RECORD_KEY)
    kept_line = kept.note_line(kept.kept_names())  # first, so the note's 1,000-character cut never drops it
    table = headline(rows) + (f"\n{kept_line}" if kept_line else "") + "\n\n" + render_table(rows, notes)
    log.info("run summary:\n%s", table)
    why_not = set_run_note(ti.dag_id, ti.run_id, table)
    if why_not:
        log.warning("the summary was not set as the DAG run's note: %s", why_not)
    else:
        log.info("the summary is the DAG run's note")
    failed = [row["repo"] for row in rows if row["failed"]]
    if failed:
        # The summary is the run's leaf: failing it is what marks the whole run failed.
        raise CloneError(f"{len(failed)} of {len(rows)} repo(s) failed: {', '.join(failed)} "
                         "(see each repo's task logs)")
    return rows
