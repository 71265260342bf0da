"""The clone_ideas DAG: its shape, pools, labels and schedule knob; the summary table."""

from __future__ import annotations

import pytest

from clone.errors import ConfigError
from clone.ideas.ideas_file import ACTIVE, BLOCKED, Idea
from clone.workflow.ideas_dag import build_ideas_dag, ideas_schedule_from_env, render_rows
from clone.operators.ci import REPO_LABEL
from clone.config.settings import AGENT_POOL, load_settings


def test_ideas_dag_shape():
    dag = build_ideas_dag(schedule="@daily", doc_md="doc")
    assert dag.dag_id == "clone_ideas" and dag.max_active_runs == 1 and dag.catchup is False
    assert set(dag.tags) == {"clone", "ideas"} and dag.doc_md == "doc"
    tasks = {t.task_id: t for t in dag.tasks}
    assert set(tasks) == {"intake", "idea.triage", "idea.bootstrap", "idea.publish", "idea.enrol", "summary"}
    edges = {(up, t.task_id) for t in dag.tasks for up in t.upstream_task_ids}
    assert edges == {("intake", "idea.triage"), ("idea.triage", "idea.bootstrap"),
                     ("idea.bootstrap", "idea.publish"), ("idea.publish", "idea.enrol"),
                     ("intake", "summary"), ("idea.enrol", "summary")}
    assert tasks["summary"].trigger_rule == "all_done"
    assert tasks["idea.bootstrap"].pool == AGENT_POOL
    assert {tasks[t].pool for t in ("idea.triage", "idea.publish", "idea.enrol")} == {"default_pool"}
    for task_id in ("idea.triage", "idea.bootstrap", "idea.publish", "idea.enrol"):
        assert tasks[task_id].map_index_template == REPO_LABEL


def test_ideas_schedule_from_env(monkeypatch):
    monkeypatch.delenv("CLONE_IDEAS_SCHEDULE", raising=False)
    assert ideas_schedule_from_env() == "@hourly"
    monkeypatch.setenv("CLONE_IDEAS_SCHEDULE", "none")
    assert ideas_schedule_from_env() is None
    monkeypatch.setenv("CLONE_IDEAS_SCHEDULE", "*/15 * * * *")
    assert ideas_schedule_from_env() == "*/15 * * * *"


def test_summary_rows():
    table = render_rows([Idea(id="a", repo_name="a", status=ACTIVE, github="me/a"),
                         Idea(id="b", repo_name="../x", status=BLOCKED, last_error="triage: bad | name")])
    assert "| a | a | ACTIVE | me/a |  |" in table
    assert "| b | ../x | BLOCKED |  | triage: bad / name |" in table
    assert table.endswith("2 idea(s), 1 blocked: b")


def test_ideas_knobs(tmp_path):
    s = load_settings({"HOME": str(tmp_path)})
    assert (s.ideas_schedule, s.github_owner, s.git_protocol) == ("@hourly", "", "https")
    s = load_settings({"CLONE_IDEAS_SCHEDULE": "none", "CLONE_GITHUB_OWNER": "acme-labs",
                       "CLONE_GIT_PROTOCOL": "ssh"})
    assert (s.ideas_schedule, s.github_owner, s.git_protocol) == (None, "acme-labs", "ssh")
    with pytest.raises(ConfigError, match="CLONE_GIT_PROTOCOL='git' must be one of: https, ssh"):
        load_settings({"CLONE_GIT_PROTOCOL": "git"})
    with pytest.raises(ConfigError, match="CLONE_GITHUB_OWNER='acme/labs' is not a GitHub organisation name"):
        load_settings({"CLONE_GITHUB_OWNER": "acme/labs"})
