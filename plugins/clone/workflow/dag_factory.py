"""Builds the ``clone_fleet`` DAG. Its shape does not depend on repos.yaml: the per-repo chain
is a mapped task group expanded at run time over what ``discover`` returns, so parsing stays
constant-time however large the fleet is."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, TriggerRule, dag, get_current_context, task, task_group
from airflow.sdk.exceptions import AirflowSkipException

from clone.config.params import fleet_params, parse_time_settings, run_settings
from clone.config.settings import AGENT_POOL, Settings
from clone.config.settings import schedule_from_env as settings_schedule
from clone.config.timeouts import AUTOFIX_PRIORITY, PASS_PRIORITY, execution_timeouts
from clone.errors import ConfigError
from clone.fleet.github_fleet import run_fleet
from clone.fleet.repos_file import RepoEntry
from clone.operators.autofix import CloneAutofixOperator
from clone.operators.ci import REPO_LABEL, GitHubCIWaitOperator, label
from clone.operators.land import CloneLandOperator
from clone.state import heartbeat, lease, lease_store
from clone.work.chain import ChainResult
from clone.work.passes import PassSkipped, run_pass
from clone.work.publish import hand_off, push_chain, skip_reason
from clone.work.session import lease_watch
from clone.work.workspace import auth_for, remote_url_of
from clone.workflow.controls import skip_if_paused
from clone.workflow.fleet_record import DISABLED_KEY, ERROR_KEY, PROBLEMS_KEY
from clone.workflow.fleet_summary import summary

log = logging.getLogger(__name__)

START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
DEFAULT_SCHEDULE = Settings.schedule
#: dag_run.conf keys that carry a multi-cycle run's bookkeeping from one cycle to the next.
CYCLE_KEY, DEADLINE_KEY = "_clone_cycle", "_clone_deadline"


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
    """Scan CLONE_CODE_ROOT (merging new checkouts into repos.yaml) and list CLONE_DISCOVER_GITHUB's
    repositories; return the enabled repos. Why it failed, if it does, is pushed first (XCom ``error``)
    for the run note."""
    context = get_current_context()
    try:
        return _discover(context)
    except Exception as e:
        context["ti"].xcom_push(key=ERROR_KEY, value=f"{type(e).__name__}: {e}"[:2000])
        raise


def _discover(context: Any) -> list[dict[str, Any]]:
    declared = set(context["dag"].params)  # context["params"] also holds undeclared conf keys
    unknown = sorted(set(context["dag_run"].conf or {}) - declared - {CYCLE_KEY, DEADLINE_KEY})
    if unknown:
        raise ConfigError(f"dag_run.conf: unknown key(s) {', '.join(unknown)}; the known params are "
                          f"{', '.join(sorted(declared))}")
    settings = run_settings(context)
    entries, problems, _ = run_fleet(settings)
    for problem in problems:
        log.error("repos.yaml: skipping a bad entry: %s", problem)
    context["ti"].xcom_push(key=PROBLEMS_KEY, value=[str(p) for p in problems])
    for entry in entries:
        if not entry.enabled:
            log.info("discover: %s is disabled (enabled: false); not touched", entry.name)
    context["ti"].xcom_push(key=DISABLED_KEY, value=[{"repo": e.name, "reason": "enabled: false in repos.yaml"}
                                                     for e in entries if not e.enabled])
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
    url = remote_url_of(entry)  # the lease lives there, shared by every worker of the repo
    lease_store.use_remote(entry.name, url, auth_for(entry, settings, url) if url else None)
    holder = lease.acquire(workspace, entry.name, run_id, lease_ttl(settings), dag_id=context["ti"].dag_id,
                           run_state=lease.dagrun_state)
    if holder:
        raise AirflowSkipException(f"{entry.name}: another pass is working on this repo ({holder}); skipped "
                                   "so that two agents never share a repo")
    try:  # the lease lists the pass's process groups and carries its heartbeat: if this task is killed,
        # the next run kills them, and need not wait for Airflow to notice
        with lease_watch(workspace, entry.name, run_id), \
                heartbeat.beating(workspace, entry.name, run_id, settings.lease_heartbeat_seconds):
            result = ChainResult.from_json(run_pass(entry, settings, run_id))
    except PassSkipped as e:
        raise AirflowSkipException(str(e)) from e
    return hand_off(settings, result).to_json()


@task(task_id="push", map_index_template=REPO_LABEL)
def push(pass_result: dict[str, Any]) -> dict[str, Any]:
    """Push the pass's commit (never forced; rebased when the remote moved); in pr mode open the PR."""
    context = get_current_context()
    result = ChainResult.from_json(pass_result)
    label(context, result.repo)
    settings = run_settings(context)
    reason = skip_reason(result, settings)
    if reason:
        raise AirflowSkipException(reason)
    return push_chain(settings, result, context["run_id"]).to_json()


def repo_chain_group(settings: Settings):
    """The per-repo task group: agent pass -> push -> CI wait -> autofix (a red CI only) -> land (gated/pr
    work once CI is green; in direct mode it skips). Autofix goes ahead of new passes in the agent pool;
    autofix and land retry by resuming (see clone.operators.autofix); ci_wait is ended by its trigger, so
    it never resumes and needs no retry."""
    timeouts = execution_timeouts(settings)

    @task_group(group_id="repo")
    def repo_chain(repo: dict[str, Any]) -> None:
        passed = agent_pass.override(execution_timeout=timeouts["agent_pass"], priority_weight=PASS_PRIORITY,
                                     weight_rule="absolute")(repo)
        pushed = push.override(execution_timeout=timeouts["push"])(passed)
        ci = GitHubCIWaitOperator(task_id="ci_wait", push_result=pushed, retries=0,
                                  execution_timeout=timeouts["ci_wait"])
        fixed = CloneAutofixOperator(task_id="autofix", ci_result=ci.output, entry=repo, pool=AGENT_POOL,
                                     retries=settings.task_retries, retry_delay=dt.timedelta(seconds=60),
                                     priority_weight=AUTOFIX_PRIORITY, weight_rule="absolute",
                                     execution_timeout=timeouts["autofix"])
        CloneLandOperator(task_id="land", fixed=fixed.output, checked=ci.output, pushed=pushed, entry=repo,
                          retries=settings.task_retries,
                          retry_delay=dt.timedelta(seconds=60), execution_timeout=timeouts["land"])

    return repo_chain


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
    """The fleet DAG: discover -> (per repo, mapped) agent pass -> push -> CI wait -> autofix -> land -> summary."""
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
