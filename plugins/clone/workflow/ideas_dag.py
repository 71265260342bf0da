"""Builds the ``clone_ideas`` DAG: ideas.yaml intake, then one mapped chain per idea to work on.

intake -> idea[triage -> bootstrap -> publish -> enrol] (mapped; labelled by idea id) -> summary.
The DAG's shape does not depend on ideas.yaml; the chain expands at run time over the ideas that
are NEW, TRIAGED, or BLOCKED with a ``retry_at`` that has come. A failing idea never stops another.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow.sdk import DAG, TriggerRule, dag, get_current_context, task, task_group
from airflow.sdk.exceptions import AirflowSkipException

from clone.ideas import bootstrap as steps
from clone.workflow.controls import skip_if_paused
from clone.workflow.dag_factory import DAG_DEFAULTS
from clone.errors import CloneError
from clone.notify.send import notify_ideas_run
from clone.state import kept
from clone.workflow.run_note import set_run_note
from clone.ideas.ideas_file import BLOCKED, STATUSES, Idea, load_ideas
from clone.operators.ci import REPO_LABEL, label
from clone.config.settings import AGENT_POOL, Settings, load_settings, schedule_from_env

log = logging.getLogger(__name__)

DEFAULT_IDEAS_SCHEDULE = Settings.ideas_schedule
IDEAS_KEY = "ideas"  # the summary's XCom of the ideas the run worked on, as they stand after it


def ideas_schedule_from_env() -> str | None:
    """``CLONE_IDEAS_SCHEDULE`` (a cron expression or preset; ``none`` = manual runs only)."""
    return schedule_from_env("CLONE_IDEAS_SCHEDULE", DEFAULT_IDEAS_SCHEDULE)


@task(task_id="intake")
def intake() -> list[dict[str, Any]]:
    """Read ideas.yaml, report bad entries, and return the ideas this run works on."""
    settings = load_settings()
    if not settings.idea_bootstrap_enabled:
        log.info("idea intake is off (IDEA_BOOTSTRAP_ENABLED=0): %s is not read and nothing is changed",
                 settings.ideas_file)
        return []
    if not settings.ideas_file.exists():
        log.info("intake: there is no ideas file at %s (see the README for its format)", settings.ideas_file)
        return []
    found, problems = load_ideas(settings.ideas_file)
    for problem in problems:
        log.error("ideas.yaml: skipping a bad entry: %s", problem)
    due = [idea for idea in found if idea.due()]
    counts = {status: sum(1 for idea in found if idea.status == status) for status in STATUSES}
    log.info("intake: %d idea(s) (%s), %d bad entr%s; working on %d: %s", len(found),
             ", ".join(f"{n} {s}" for s, n in counts.items() if n), len(problems),
             "y" if len(problems) == 1 else "ies", len(due), ", ".join(idea.id for idea in due) or "none")
    for idea in found:
        if idea.status == BLOCKED and idea not in due:
            log.info("intake: idea %s stays BLOCKED until you set its status to TRIAGED: %s", idea.id,
                     idea.last_error or "(no last_error)")
    return [{"id": idea.id, "repo_name": idea.repo_name} for idea in due]


def _run(step: str, idea: Mapping[str, Any], action: Callable[[Settings, Idea], Idea]) -> dict[str, Any]:
    """Label the mapped instance with the idea id and run one step (skips become Airflow skips)."""
    context = get_current_context()
    label(context, idea["id"])
    settings = load_settings()
    try:
        return steps.run_step(step, settings, idea["id"], lambda current: action(settings, current))
    except steps.StepSkipped as e:
        raise AirflowSkipException(str(e)) from e


@task(task_id="triage", map_index_template=REPO_LABEL)
def triage(idea: dict[str, Any]) -> dict[str, Any]:
    """A safe repo_name whose target under CLONE_CODE_ROOT is free or already this idea's: TRIAGED."""
    return _run("triage", idea, steps.triage)


@task(task_id="bootstrap", pool=AGENT_POOL, map_index_template=REPO_LABEL)
def bootstrap(idea: dict[str, Any]) -> dict[str, Any]:
    """git init under CLONE_CODE_ROOT, the agent with the incubator prompt, memory docs, one commit."""
    context = get_current_context()
    label(context, idea["id"])
    skip_if_paused(idea["id"])
    run_id = context["run_id"]
    dag_id = context["ti"].dag_id
    return _run("bootstrap", idea, lambda settings, current: steps.bootstrap(settings, current, run_id, dag_id))


@task(task_id="publish", map_index_template=REPO_LABEL)
def publish(idea: dict[str, Any]) -> dict[str, Any]:
    """Create or reuse the private GitHub repo, add it as origin, push main."""

    def action(settings: Settings, current: Idea) -> Idea:
        from clone.github.client import GitHubClient  # PyGithub: imported when used, not at parse
        with GitHubClient.for_connection(settings.github_conn_id) as api:
            return steps.publish(settings, current, api)

    return _run("publish", idea, action)


@task(task_id="enrol", map_index_template=REPO_LABEL)
def enrol(idea: dict[str, Any]) -> dict[str, Any]:
    """Add the new repo to repos.yaml: the idea is ACTIVE."""
    return _run("enrol", idea, steps.enrol)


@task_group(group_id="idea")
def idea_chain(idea: dict[str, Any]) -> None:
    """triage -> bootstrap -> publish -> enrol, for one idea."""
    enrol(publish(bootstrap(triage(idea))))


def render_rows(ideas: Sequence[Idea]) -> str:
    """A Markdown table of the ideas a run worked on, and how they stand now."""
    lines = ["| idea | repo_name | status | github | last_error |", "|---|---|---|---|---|"]
    for idea in ideas:
        error = (idea.last_error or "").replace("|", "/")
        lines.append(f"| {idea.id} | {idea.repo_name or ''} | {idea.status} | {idea.github or ''} | "
                     f"{error[:300]} |")
    blocked = [idea.id for idea in ideas if idea.status == BLOCKED]
    lines += ["", f"{len(ideas)} idea(s), {len(blocked)} blocked"
              + (f": {', '.join(blocked)}" if blocked else "")]
    return "\n".join(lines)


@task(task_id="summary", trigger_rule=TriggerRule.ALL_DONE)
def summary(worked: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Log one row per idea the run worked on; fail the run when any of them is BLOCKED."""
    settings = load_settings()
    if not settings.idea_bootstrap_enabled:
        log.info("idea intake is off (IDEA_BOOTSTRAP_ENABLED=0); nothing was done")
        return []
    ids = [item["id"] for item in worked or []]
    found, _ = load_ideas(settings.ideas_file) if ids else ([], [])
    rows = [idea for idea in found if idea.id in ids]
    ti = get_current_context()["ti"]
    note = render_rows(rows)
    kept_line = kept.note_line(kept.kept_names())
    if kept_line:
        note = f"{kept_line}\n\n{note}"
    log.info("ideas summary:\n%s", note)
    why_not = set_run_note(ti.dag_id, ti.run_id, note)
    if why_not:
        log.warning("the summary was not set as the DAG run's note: %s", why_not)
    ti.xcom_push(key=IDEAS_KEY, value=[idea.to_dict() for idea in rows])  # for the Clone fleet page
    notify_ideas_run(ti, [idea.to_dict() for idea in rows])
    blocked = [idea.id for idea in rows if idea.status == BLOCKED]
    if blocked:
        raise CloneError(f"{len(blocked)} of {len(rows)} idea(s) BLOCKED: {', '.join(blocked)} "
                         f"(last_error in {settings.ideas_file}"
                         f"{' or its Variable clone.ideas.<id>' if kept_line else ''} says why)")
    return [idea.to_dict() for idea in rows]


def build_ideas_dag(*, dag_id: str = "clone_ideas", schedule: str | None = DEFAULT_IDEAS_SCHEDULE,
                    doc_md: str | None = None) -> DAG:
    """The ideas DAG: intake -> (per idea, mapped) triage -> bootstrap -> publish -> enrol -> summary."""

    @dag(dag_id=dag_id, schedule=schedule, doc_md=doc_md, tags=["clone", "ideas"], **DAG_DEFAULTS)
    def clone_ideas() -> None:
        worked = intake()
        idea_chain.expand(idea=worked) >> summary(worked)

    return clone_ideas()
