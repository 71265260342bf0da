"""The deferral race guard (clone.triggers.ci docstring): ci_wait is ended by its trigger, autofix's
resumption never comes before ``not_before``, and a retried autofix resumes instead of fixing twice."""

from __future__ import annotations

import time

from airflow.triggers.base import TaskFailedEvent, TaskSuccessEvent

from clone.util.git import Git
from clone.operators.autofix import autofix_commits
from clone.work.session import commit_message
from clone.config.settings import load_settings
from clone.config.timeouts import execution_timeouts
from clone.triggers.ci import GitHubCITrigger
from clone.github.connection import GitHubEndpoint
from clone.work.workspace import identity
from tests.repos import git, make_remote_and_checkout
from tests.github.test_github_ci import REPO, TOKEN, collect, endpoint_of, gh, pushed, trigger_watch  # noqa: F401

CHAIN = {"repo": "app", "github": REPO, "pushed_sha": None, "branch": "main"}


def test_ci_wait_trigger_ends_the_task_with_the_chain_result_as_xcom(gh, pushed, endpoint_of):  # noqa: F811
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare, complete_after_polls=1)
    endpoint_of(GitHubEndpoint(base_url=gh.url, token=TOKEN))
    chain = {**CHAIN, "pushed_sha": sha}
    trigger = GitHubCITrigger("github_ci", trigger_watch(sha, poll_seconds=0.05), end_task=chain)
    assert GitHubCITrigger(**trigger.serialize()[1]).end_task == chain  # survives the metadata DB
    events = collect(trigger)
    assert len(events) == 1 and isinstance(events[0], TaskSuccessEvent)
    value = events[0].xcoms["return_value"]
    assert value["pushed_sha"] == sha and value["ci"]["status"] == "success" and value["ci"]["sha"] == sha


def test_ci_wait_trigger_fails_the_task_on_a_timeout(gh, pushed, endpoint_of):  # noqa: F811
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare, complete_after_polls=10_000)
    endpoint_of(GitHubEndpoint(base_url=gh.url, token=TOKEN))
    now = time.time()
    events = collect(GitHubCITrigger("github_ci", trigger_watch(sha, deadline=now + 0.3, started=now,
                                                                poll_seconds=0.05),
                                     end_task={**CHAIN, "pushed_sha": sha}))
    assert len(events) == 1 and isinstance(events[0], TaskFailedEvent)


def test_a_resuming_trigger_yields_nothing_before_not_before(gh, pushed, endpoint_of):  # noqa: F811
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare, complete_after_polls=1)
    endpoint_of(GitHubEndpoint(base_url=gh.url, token=TOKEN))
    started = time.time()
    events = collect(GitHubCITrigger("github_ci", trigger_watch(sha, poll_seconds=0.05, not_before=started + 1.5)))
    waited = time.time() - started
    assert [e.payload["status"] for e in events] == ["success"]
    assert waited >= 1.5, waited


def test_autofix_commits_finds_only_this_runs_fixes(tmp_path, clone_env):
    checkout, _ = make_remote_and_checkout(tmp_path, "app")
    ws = Git(checkout, identity(load_settings()))
    base = git(checkout, "rev-parse", "HEAD")

    def commit(name: str, message: str) -> str:
        (checkout / name).write_text(name)
        git(checkout, "add", name)
        git(checkout, "commit", "--quiet", "-m", message)
        return git(checkout, "rev-parse", "HEAD")

    first = commit("a", commit_message("autofix", "app", "run-1", "fixed a", None))
    commit("b", "a person's commit in between")
    commit("c", commit_message("autofix", "app", "run-0", "an older run's fix", None))
    second = commit("d", commit_message("autofix", "app", "run-1", "fixed d", 12))
    head = git(checkout, "rev-parse", "HEAD")
    assert autofix_commits(ws, base, head, "run-1") == [first, second]
    assert autofix_commits(ws, base, head, "run-2") == []
    assert autofix_commits(ws, head, head, "run-1") == []


def test_every_task_has_an_execution_timeout_from_the_documented_timeouts(clone_env, monkeypatch):
    monkeypatch.setenv("CLONE_AGENT_TIMEOUT_MINUTES", "10")
    monkeypatch.setenv("CLONE_VERIFY_TIMEOUT_MINUTES", "5")
    timeouts = execution_timeouts(load_settings())
    assert timeouts["agent_pass"].total_seconds() == (2 * 10 + 4 * 5 + 30) * 60
    assert timeouts["autofix"].total_seconds() == (10 + 2 * 5 + 30) * 60
    assert set(timeouts) >= {"discover", "agent_pass", "push", "ci_wait", "autofix", "summary"}


def test_the_fleet_dag_retries_autofix_first_in_the_pool_and_times_every_task(clone_env):
    from clone.workflow.dag_factory import build_fleet_dag

    dag = build_fleet_dag(schedule=None)
    tasks = {t.task_id: t for t in dag.tasks}
    autofix, ci_wait, agent_pass = tasks["repo.autofix"], tasks["repo.ci_wait"], tasks["repo.agent_pass"]
    assert autofix.retries == 2 and ci_wait.retries == 0 and agent_pass.retries == 0
    assert autofix.priority_weight > agent_pass.priority_weight and autofix.pool == agent_pass.pool
    assert str(autofix.weight_rule).lower().endswith("absolute")
    for task_id in ("discover", "repo.agent_pass", "repo.push", "repo.ci_wait", "repo.autofix", "summary"):
        assert tasks[task_id].execution_timeout is not None, task_id
