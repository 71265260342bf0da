"""Builds the ``clone_fleet`` DAG. Its shape does not depend on repos.yaml: the per-repo chain
is a mapped task group expanded at run time over what ``discover`` returns, so parsing stays
constant-time however large the fleet is."""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from airflow.sdk import DAG, TriggerRule, dag, get_current_context, task, task_group
from airflow.sdk.exceptions import AirflowSkipException

from clone.controls import skip_if_paused
from clone.discover import discover
from clone.errors import CloneError, PushConflict
from clone.fleet import RepoEntry, load_fleet, merge_discovered
from clone.operators.autofix import CloneAutofixOperator
from clone.operators.ci import REPO_LABEL, GitHubCIWaitOperator, label
from clone.passes import PassSkipped, run_pass
from clone.push import push_branch, record_push_conflict
from clone.settings import AGENT_POOL, Settings, load_settings
from clone.summary import render_table, repo_rows
from clone.workspace import identity

log = logging.getLogger(__name__)

START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
DEFAULT_SCHEDULE = Settings.schedule


def schedule_from_env() -> str | None:
    """``CLONE_SCHEDULE`` (a cron expression or preset such as ``@hourly``; ``none`` = manual only)."""
    value = os.environ.get("CLONE_SCHEDULE", "").strip()
    if not value:
        return DEFAULT_SCHEDULE
    return None if value.lower() in ("none", "null") else value


@task(task_id="discover")
def discover_repos() -> list[dict[str, Any]]:
    """Scan CLONE_CODE_ROOT, merge new checkouts into repos.yaml, return the enabled entries."""
    settings = load_settings()
    found = discover(settings.code_root, settings.active_days)
    log.info("discover: %d checkout(s) under %s with a commit in the last %d day(s)",
             len(found), settings.code_root, settings.active_days)
    added = merge_discovered(settings.repos_file, [c.path for c in found])
    for path in added:
        log.info("discover: added %s to %s", path, settings.repos_file)
    entries, problems = load_fleet(settings.repos_file)
    for problem in problems:
        log.error("repos.yaml: skipping a bad entry: %s", problem)
    enabled = [e for e in entries if e.enabled]
    for entry in entries:
        if not entry.enabled:
            log.info("discover: %s is disabled (enabled: false); not touched", entry.name)
    log.info("discover: %d enabled repo(s): %s", len(enabled), ", ".join(e.name for e in enabled) or "none")
    return [e.to_dict() for e in enabled]


@task(task_id="agent_pass", pool=AGENT_POOL, map_index_template=REPO_LABEL)
def agent_pass(repo: dict[str, Any]) -> dict[str, Any]:
    """Run one agent pass on the repo in its private workspace and commit what it changed."""
    context = get_current_context()
    entry = RepoEntry.from_dict(repo)
    label(context, entry.name)
    skip_if_paused(entry.name)
    try:
        return run_pass(entry, load_settings(), context["run_id"])
    except PassSkipped as e:
        raise AirflowSkipException(str(e)) from e


@task(task_id="push", map_index_template=REPO_LABEL)
def push(pass_result: dict[str, Any]) -> dict[str, Any]:
    """Push the pass's commit to the repo's branch (never forced; rebased when the remote moved)."""
    context = get_current_context()
    repo = pass_result["repo"]
    label(context, repo)
    if not pass_result["changed"]:
        raise AirflowSkipException(f"{repo}: the pass made no change; nothing to push")
    if not pass_result["has_remote"]:
        raise AirflowSkipException(f"{repo}: no remote; the commit stays in the workspace "
                                   f"{pass_result['workdir']} (push skipped)")
    settings = load_settings()
    from clone.git_ops import Git  # local: keep the DAG module's import graph small
    from pathlib import Path

    ws = Git(Path(pass_result["workdir"]), identity(settings))
    try:
        sha = push_branch(ws, pass_result["branch"])
    except PushConflict as e:
        ref = record_push_conflict(ws, pass_result["branch"], repo, e, context["run_id"])
        raise PushConflict(f"{repo}: {e}; the work is kept at {ref} in {ws.path} and an incident was "
                           "recorded in INCIDENTS.md") from e
    return {**pass_result, "pushed": True, "pushed_sha": sha}


@task_group(group_id="repo")
def repo_chain(repo: dict[str, Any]) -> None:
    """agent pass -> push -> CI wait -> autofix, for one repo."""
    pushed = push(agent_pass(repo))
    ci = GitHubCIWaitOperator(task_id="ci_wait", push_result=pushed)
    CloneAutofixOperator(task_id="autofix", ci_result=ci.output, pool=AGENT_POOL)


@task(task_id="summary", trigger_rule=TriggerRule.ALL_DONE)
def summary(repos: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Log one row per repo with the state of each link of its chain, and which repos failed."""
    context = get_current_context()
    ti = context["ti"]
    states = ti.get_task_states(dag_id=ti.dag_id, task_group_id="repo", run_ids=[ti.run_id])
    rows = repo_rows(repos or [], states.get(ti.run_id, {}))
    log.info("run summary:\n%s", render_table(rows))
    failed = [row["repo"] for row in rows if row["failed"]]
    if failed:
        # The summary is the run's only leaf: failing it is what marks the whole run failed.
        raise CloneError(f"{len(failed)} of {len(rows)} repo(s) failed: {', '.join(failed)} "
                         "(see each repo's task logs)")
    return rows


def build_fleet_dag(*, dag_id: str = "clone_fleet", schedule: str | None = DEFAULT_SCHEDULE,
                    doc_md: str | None = None) -> DAG:
    """The fleet DAG: discover -> (per repo, mapped) agent pass -> push -> CI wait -> autofix."""

    @dag(
        dag_id=dag_id,
        schedule=schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        doc_md=doc_md,
        tags=["clone"],
        default_args={"retries": 0},
    )
    def clone_fleet() -> None:
        repos = discover_repos()
        repo_chain.expand(repo=repos) >> summary(repos)

    return clone_fleet()
