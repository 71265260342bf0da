"""Every DAG file imports cleanly, and the fleet DAG has the documented shape."""

from __future__ import annotations

from pathlib import Path

from airflow.dag_processing.dagbag import DagBag

from clone.workflow.dag_factory import build_fleet_dag
from clone.operators.ci import REPO_LABEL
from clone.config.settings import AGENT_POOL

DAGS = Path(__file__).resolve().parents[2] / "dags"


def test_dag_files_import_without_errors():
    bag = DagBag(dag_folder=str(DAGS), safe_mode=False)
    assert bag.import_errors == {}
    assert "clone_fleet" in bag.dag_ids
    for dag in bag.dags.values():
        assert dag.tags and dag.doc_md, f"{dag.dag_id} needs tags and doc_md"


def test_fleet_dag_shape():
    dag = build_fleet_dag(schedule="@daily")
    assert dag.dag_id == "clone_fleet" and dag.max_active_runs == 1 and dag.catchup is False
    tasks = {t.task_id: t for t in dag.tasks}
    assert set(tasks) == {"discover", "repo.agent_pass", "repo.push", "repo.ci_wait", "repo.autofix", "repo.land",
                          "summary", "more_cycles", "next_cycle"}
    edges = {(up, t.task_id) for t in dag.tasks for up in t.upstream_task_ids}
    assert edges == {("discover", "repo.agent_pass"), ("repo.agent_pass", "repo.push"),
                     ("repo.push", "repo.ci_wait"), ("repo.ci_wait", "repo.autofix"),
                     ("repo.ci_wait", "repo.land"), ("repo.autofix", "repo.land"),
                     # push's result and the repos.yaml entry: what land and autofix read when ci_wait skipped
                     ("repo.push", "repo.land"), ("discover", "repo.land"), ("discover", "repo.autofix"),
                     ("discover", "summary"), ("repo.land", "summary"), ("repo.land", "more_cycles"),
                     ("more_cycles", "next_cycle")}
    assert tasks["summary"].trigger_rule == "all_done"
    assert tasks["repo.land"].trigger_rule == "all_done"  # also after a skipped autofix; skips itself
    assert tasks["repo.autofix"].trigger_rule == "all_done"  # runs (so it is labelled) and skips itself
    assert tasks["repo.agent_pass"].pool == AGENT_POOL and tasks["repo.autofix"].pool == AGENT_POOL
    for task_id in ("repo.agent_pass", "repo.push", "repo.ci_wait", "repo.autofix", "repo.land"):
        assert tasks[task_id].map_index_template == REPO_LABEL


def test_schedule_from_env(monkeypatch):
    from clone.workflow.dag_factory import schedule_from_env

    monkeypatch.delenv("CLONE_SCHEDULE", raising=False)
    assert schedule_from_env() == "0 */6 * * *"
    monkeypatch.setenv("CLONE_SCHEDULE", "none")
    assert schedule_from_env() is None
    monkeypatch.setenv("CLONE_SCHEDULE", "@hourly")
    assert schedule_from_env() == "@hourly"

