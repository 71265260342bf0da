"""Builds the ``clone_fleet`` DAG. Its shape does not depend on repos.yaml: the per-repo chain
is a mapped task group expanded at run time over what ``discover`` returns, so parsing stays
constant-time however large the fleet is."""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, TriggerRule, dag, get_current_context, task, task_group
from airflow.sdk.exceptions import AirflowSkipException

from clone.state import lease
from clone.util import runner
from clone.workflow.controls import fleet_paused, skip_if_paused
from clone.fleet.discover import discover
from clone.errors import CloneError, ConfigError, PushConflict
from clone.fleet.repos_file import RepoEntry, load_fleet, merge_discovered
from clone.util.git import Git
from clone.operators.autofix import CloneAutofixOperator
from clone.github import pulls
from clone.operators.ci import xcom_dict, REPO_LABEL, GitHubCIWaitOperator, label
from clone.operators.land import work_branch
from clone.config.params import fleet_params, parse_time_settings, run_settings
from clone.work.passes import PassSkipped, run_pass
from clone.work.push import push_branch, record_push_conflict
from clone.config.settings import AGENT_POOL, Settings
from clone.config.settings import schedule_from_env as settings_schedule
from clone.workflow.run_note import set_run_note, skip_reasons
from clone.workflow.summary import first_skipped, known_reason, render_table, repo_rows, warnings
from clone.config.timeouts import AUTOFIX_PRIORITY, PASS_PRIORITY, execution_timeouts
from clone.work.workspace import identity

log = logging.getLogger(__name__)

START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
DEFAULT_SCHEDULE = Settings.schedule
#: dag_run.conf keys that carry a multi-cycle run's bookkeeping from one cycle to the next.
CYCLE_KEY, DEADLINE_KEY = "_clone_cycle", "_clone_deadline"
#: The summary's XCom key for its rows (pushed before it can fail; the next run compares skips with it).
ROWS_KEY = "rows"


#: What every Clone DAG shares: no catchup (backfills are explicit), one run at a time, no retries
#: (a pass is not idempotent; the next cycle is the retry).
DAG_DEFAULTS: dict[str, Any] = {"start_date": START_DATE, "catchup": False, "max_active_runs": 1,
                                "default_args": {"retries": 0}}


def schedule_from_env() -> str | None:
    """``CLONE_SCHEDULE`` (a cron expression or preset such as ``@hourly``; ``none`` = manual only)."""
    return settings_schedule("CLONE_SCHEDULE", DEFAULT_SCHEDULE)


def run_deadline(context: Any, settings: Settings) -> float | None:
    """Epoch seconds after which no new pass starts (MAX_HOURS from the first cycle's start), or None."""
    conf = context["dag_run"].conf or {}
    if conf.get(DEADLINE_KEY):
        return float(conf[DEADLINE_KEY])
    if not settings.max_hours:
        return None
    started = context["dag_run"].start_date or dt.datetime.now(dt.timezone.utc)
    return started.timestamp() + settings.max_hours * 3600


def lease_ttl(settings: Settings) -> float:
    """How long a chain may hold its repo before its lease counts as abandoned."""
    # Every CI wait a chain can make (pass, re-run, each autofix, each gated landing) and every agent
    # run (pass, verification fix, each autofix), plus checks and an hour of queueing.
    waits = 2 + settings.autofix_max_attempts + 3
    agents = 2 + settings.autofix_max_attempts
    return (waits * settings.ci_timeout_minutes + agents * settings.agent_timeout_minutes
            + 4 * settings.verify_timeout_minutes) * 60 + 3600


@task(task_id="discover")
def discover_repos() -> list[dict[str, Any]]:
    """Scan CLONE_CODE_ROOT, merge new checkouts into repos.yaml, return the enabled entries."""
    context = get_current_context()
    declared = set(context["dag"].params)  # context["params"] also holds undeclared conf keys
    unknown = sorted(set(context["dag_run"].conf or {}) - declared - {CYCLE_KEY, DEADLINE_KEY})
    if unknown:
        raise ConfigError(f"dag_run.conf: unknown key(s) {', '.join(unknown)}; the known params are "
                          f"{', '.join(sorted(declared))}")
    settings = run_settings(context)
    found = discover(settings.code_root, settings.active_days)
    log.info("discover: %d checkout(s) under %s with a commit in the last %d day(s)",
             len(found), settings.code_root, settings.active_days)
    added = merge_discovered(settings.repos_file, [c.path for c in found])
    for path in added:
        log.info("discover: added %s to %s", path, settings.repos_file)
    entries, problems = load_fleet(settings.repos_file)
    for problem in problems:
        log.error("repos.yaml: skipping a bad entry: %s", problem)
    for entry in entries:
        if not entry.enabled:
            log.info("discover: %s is disabled (enabled: false); not touched", entry.name)
    enabled = [e for e in entries if e.enabled]
    wanted = list(context["params"].get("repos") or [])
    if wanted:
        unknown = sorted(set(wanted) - {e.name for e in enabled})
        if unknown:
            raise ConfigError(f"params.repos: {', '.join(unknown)} not found among the enabled repos in "
                              f"{settings.repos_file} (known: {', '.join(e.name for e in enabled) or 'none'})")
        enabled = [e for e in enabled if e.name in wanted]
    log.info("discover: %d repo(s) this run: %s", len(enabled), ", ".join(e.name for e in enabled) or "none")
    from airflow.sdk import conf  # the cap on mapped task instances (core.max_map_length)

    cap = conf.getint("core", "max_map_length", fallback=1024)
    if len(enabled) > cap:
        raise ConfigError(f"{len(enabled)} enabled repos exceed Airflow's core.max_map_length={cap}; raise it "
                          "(AIRFLOW__CORE__MAX_MAP_LENGTH) or disable repos in repos.yaml")
    return [e.to_dict() for e in enabled]


@task(task_id="agent_pass", pool=AGENT_POOL, map_index_template=REPO_LABEL)
def agent_pass(repo: dict[str, Any]) -> dict[str, Any]:
    """Run one agent pass on the repo in its private workspace and commit what it changed."""
    context = get_current_context()
    entry = RepoEntry.from_dict(repo)
    label(context, entry.name)
    skip_if_paused(entry.name)
    settings = run_settings(context)
    deadline = run_deadline(context, settings)
    if deadline is not None and time.time() > deadline:
        raise AirflowSkipException(f"{entry.name}: the MAX_HOURS deadline "
                                   f"({dt.datetime.fromtimestamp(deadline, dt.timezone.utc):%Y-%m-%d %H:%M} UTC) "
                                   "has passed; no new pass starts")
    run_id, workspace = context["run_id"], settings.workspace
    holder = lease.acquire(workspace, entry.name, run_id, lease_ttl(settings), dag_id=context["ti"].dag_id,
                           run_state=lease.dagrun_state)
    if holder:
        raise AirflowSkipException(f"{entry.name}: another pass is working on this repo ({holder}); skipped "
                                   "so that two agents never share a repo")
    try:  # the lease lists the pass's process groups: if this task is killed, the next run kills them
        with runner.watching(lambda pgid: lease.record_group(workspace, entry.name, run_id, pgid),
                             lambda pgid: lease.forget_group(workspace, entry.name, run_id, pgid)):
            return run_pass(entry, settings, run_id)
    except PassSkipped as e:
        raise AirflowSkipException(str(e)) from e


@task(task_id="push", map_index_template=REPO_LABEL)
def push(pass_result: dict[str, Any]) -> dict[str, Any]:
    """Push the pass's commit to the repo's branch (never forced; rebased when the remote moved)."""
    context = get_current_context()
    repo = pass_result["repo"]
    label(context, repo)
    settings = run_settings(context)
    if not pass_result["changed"]:
        raise AirflowSkipException(f"{repo}: the pass made no change; nothing to push")
    if settings.dry_run:
        raise AirflowSkipException(f"{repo}: dry run; the commit {pass_result['head_sha'][:12]} stays in the "
                                   f"workspace {pass_result['workdir']}")
    if not pass_result["has_remote"]:
        raise AirflowSkipException(f"{repo}: no remote; the commit stays in the workspace "
                                   f"{pass_result['workdir']} (push skipped)")
    ws = Git(Path(pass_result["workdir"]), identity(settings))
    mode = pass_result.get("push_mode", "direct")
    target = pass_result["branch"] if mode == "direct" else work_branch(repo, context["run_id"])
    if mode != "direct" and not pass_result.get("github"):
        raise ConfigError(f"{repo}: push_mode {mode} needs GitHub CI ('github: owner/name' in repos.yaml); "
                          "without it nothing could say the work is green")
    try:
        sha = push_branch(ws, target)
    except PushConflict as e:
        ref = record_push_conflict(ws, pass_result["branch"], repo, e, context["run_id"])
        raise PushConflict(f"{repo}: {e}; the work is kept at {ref} in {ws.path} and an incident was "
                           "recorded in INCIDENTS.md") from e
    result = {**pass_result, "pushed": True, "pushed_sha": sha, "push_branch": target}
    if mode == "pr":
        from clone.github.client import GitHubClient  # PyGithub: imported when used, not at parse
        with GitHubClient.for_connection(settings.github_conn_id) as api:
            first_line = ((pass_result.get("agent") or {}).get("last_message") or "").strip().splitlines()
            title = f"clone: {first_line[0][:80]}" if first_line else f"clone: maintenance pass on {repo}"
            pull = pulls.open_pull(api, pass_result["github"], head=target, base=pass_result["branch"],
                                   title=title, body=pulls.render_body(result))
        result["pull"] = {"number": pull["number"], "html_url": pull.get("html_url")}
    return result


def repo_chain_group(settings: Settings):
    """The per-repo task group: agent pass -> push -> CI wait -> autofix (which also lands gated/pr work
    once CI is green). Autofix goes ahead of new passes in the agent pool and retries by resuming (see
    clone.operators.autofix); ci_wait is ended by its trigger, so it never resumes and needs no retry."""
    timeouts = execution_timeouts(settings)

    @task_group(group_id="repo")
    def repo_chain(repo: dict[str, Any]) -> None:
        passed = agent_pass.override(execution_timeout=timeouts["agent_pass"], priority_weight=PASS_PRIORITY,
                                     weight_rule="absolute")(repo)
        pushed = push.override(execution_timeout=timeouts["push"])(passed)
        ci = GitHubCIWaitOperator(task_id="ci_wait", push_result=pushed, retries=0,
                                  execution_timeout=timeouts["ci_wait"])
        CloneAutofixOperator(task_id="autofix", ci_result=ci.output, pool=AGENT_POOL,
                             retries=settings.task_retries, retry_delay=dt.timedelta(seconds=60),
                             priority_weight=AUTOFIX_PRIORITY, weight_rule="absolute",
                             execution_timeout=timeouts["autofix"])

    return repo_chain


def last_results(ti: Any, count: int, states: dict[str, Any]) -> list[dict[str, Any] | None]:
    """Per repo, the result of the last task of its chain that succeeded (each adds to the previous)."""
    results: list[dict[str, Any] | None] = [None] * count
    for step in ("autofix", "ci_wait", "push", "agent_pass"):
        wanted = [i for i, r in enumerate(results) if r is None and states.get(f"repo.{step}_{i}") == "success"]
        if wanted:
            for index, value in zip(wanted, ti.xcom_pull(task_ids=f"repo.{step}", map_indexes=wanted)):
                results[index] = xcom_dict(value)
    return results


def skip_messages(ti: Any, repos: list[dict[str, Any]], states: dict[str, Any],
                  results: list[dict[str, Any] | None], settings: Settings) -> dict[int, str]:
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
        raise CloneError("discover did not produce the fleet (it failed); see the discover task's log")
    released = lease.release_all(settings.workspace, ti.run_id)
    if released:
        log.info("released %d repo lease(s)", len(released))
    states = ti.get_task_states(dag_id=ti.dag_id, task_group_id="repo", run_ids=[ti.run_id])
    run_states = states.get(ti.run_id, {})
    results = last_results(ti, len(repos), run_states)
    rows = repo_rows(repos, run_states, results, skip_reasons=skip_messages(ti, repos, run_states, results,
                                                                             settings))
    ti.xcom_push(key=ROWS_KEY, value=rows)  # for the next run's comparison, also when this one fails
    notes = warnings(rows, *previous_summary(ti))
    for note in notes:
        log.warning("%s", note)
    table = render_table(rows, notes)
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


@task.short_circuit(task_id="more_cycles", trigger_rule=TriggerRule.ALL_DONE, ignore_downstream_trigger_rules=True)
def more_cycles() -> dict[str, Any] | None:
    """The next cycle's conf when MAX_CYCLES (``cycles``) is not reached and MAX_HOURS has time left."""
    context = get_current_context()
    settings = run_settings(context)
    conf = dict(context["dag_run"].conf or {})
    cycle = int(conf.get(CYCLE_KEY, 1))
    ti = context["ti"]
    discovered = ti.get_task_states(dag_id=ti.dag_id, task_ids=["discover"], run_ids=[ti.run_id])
    if discovered.get(ti.run_id, {}).get("discover") != "success":
        log.info("cycle %d: discover did not succeed; no further cycle until that is fixed", cycle)
        return None
    if cycle >= settings.max_cycles:
        log.info("cycle %d of %d: this was the last one", cycle, settings.max_cycles)
        return None
    deadline = run_deadline(context, settings)
    if deadline is not None and time.time() > deadline:
        log.info("cycle %d of %d: the MAX_HOURS deadline has passed; no further cycle", cycle, settings.max_cycles)
        return None
    params = {key: value for key, value in (context["params"] or {}).items()}
    log.info("cycle %d of %d done; triggering cycle %d", cycle, settings.max_cycles, cycle + 1)
    return {**params, CYCLE_KEY: cycle + 1, DEADLINE_KEY: deadline}


def build_fleet_dag(*, dag_id: str = "clone_fleet", schedule: str | None = DEFAULT_SCHEDULE,
                    doc_md: str | None = None) -> DAG:
    """The fleet DAG: discover -> (per repo, mapped) agent pass -> push -> CI wait -> autofix -> summary."""
    settings = parse_time_settings()

    @dag(dag_id=dag_id, schedule=schedule, doc_md=doc_md, tags=["clone"], params=fleet_params(), **DAG_DEFAULTS)
    def clone_fleet() -> None:
        timeouts = execution_timeouts(settings)
        repos = discover_repos.override(execution_timeout=timeouts["discover"])()
        chains = repo_chain_group(settings).expand(repo=repos)
        # summary stays a leaf: its failure (a repo failed) is what fails the run.
        chains >> summary.override(execution_timeout=timeouts["summary"])(repos)
        next_conf = more_cycles()
        chains >> next_conf
        next_conf >> TriggerDagRunOperator(task_id="next_cycle", trigger_dag_id=dag_id, conf=next_conf)

    return clone_fleet()
