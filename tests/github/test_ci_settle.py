"""Green only on a complete picture (clone.github.ci_suites): check suites, the settle period, late workflows.

The rule is tested pure (``judge_suites``) and through ``poll``/``apoll`` against the fake GitHub API,
whose late workflow registers only after the commit's first run was seen completed.
"""

from __future__ import annotations

import asyncio

from clone.github.async_client import AsyncGitHubApi
from clone.github.api import RetryPolicy
from clone.github.ci import CIWatch, apoll, poll
from clone.github.ci_suites import judge_suites
from clone.github.connection import GitHubEndpoint
from tests.fakes.github_api import CIOutcome, LateWorkflow
from clone.triggers.ci import GitHubCITrigger
from tests.github.test_github_ci import (  # noqa: F401
    REPO, T0, TOKEN, api, collect, drive, endpoint_of, gh, make_watch, pushed, trigger_watch,
)

RED = LateWorkflow(name="Lint", path=".github/workflows/lint.yml", after_polls=1,
                   ci=lambda sha, attempt: CIOutcome.failed(job="lint", step="Run ruff", log="E501 too long"))


def suite(app: str, status: str = "completed", conclusion: str | None = "success", runs: int = 1) -> dict:
    return {"id": hash(app) % 1000, "app": app, "status": status, "conclusion": conclusion,
            "check_runs": runs}


# ------------------------------------------------------------------------------------ the rule, pure
def test_an_incomplete_suite_with_check_runs_is_waited_for_until_the_deadline():
    judged = judge_suites([suite("github-actions"), suite("circleci", "in_progress", None, 2)], 10_000, 300)
    assert judged.state == "running" and "circleci in_progress" in judged.note


def test_an_empty_queued_suite_is_waited_for_within_the_grace_then_ignored_and_named():
    stale = [suite("github-actions"), suite("codecov", "queued", None, 0)]
    assert judge_suites(stale, 299, 300).state == "running"
    judged = judge_suites(stale, 300, 300)
    assert judged.state == "success" and "ignored 1 check suite(s)" in judged.message
    assert "codecov" in judged.message


def test_a_red_suite_of_another_app_fails_but_actions_suites_are_judged_by_their_runs():
    assert judge_suites([suite("circleci", conclusion="failure")], 0, 300).state == "failure"
    assert judge_suites([suite("github-actions", conclusion="failure")], 0, 300).state == "success"
    assert judge_suites([suite("circleci", conclusion="neutral"), suite("x", conclusion="skipped")], 0, 300) \
        .state == "success"


# ------------------------------------------------------------------------------- through poll()
def test_before_without_settling_a_late_red_workflow_is_missed(gh, api, pushed):  # noqa: F811
    """The old behaviour (settle 0, its suite not listed early): green, the late red workflow unseen."""
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare).late_workflows.append(RED)
    _, event = drive(api, make_watch(sha, settle_seconds=0))
    assert event["status"] == "success" and [r["name"] for r in event["runs"]] == ["CI"]


def test_a_late_red_workflow_within_the_settle_period_makes_ci_red(gh, api, pushed):  # noqa: F811
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare).late_workflows.append(RED)
    results, event = drive(api, make_watch(sha, settle_seconds=5))
    assert any("settling" in r.note for r in results), [r.note for r in results]
    assert event["status"] == "failure", event["message"]
    assert {r["name"]: r["conclusion"] for r in event["runs"]} == {"CI": "success", "Lint": "failure"}
    assert "/actions/runs/" in event["message"] and event["message"].count("http") == 2


def test_green_after_the_settle_period_costs_free_conditional_polls(gh, api, pushed):  # noqa: F811
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare)
    watch = make_watch(sha, settle_seconds=3)
    results, event = drive(api, watch)
    assert event["status"] == "success" and watch.has_checks is True
    settling = [r for r in results if "settling" in r.note]
    assert settling and all(r.wait <= 3 for r in settling)
    assert watch.green_since is not None and T0 + 3 <= watch.green_since + 3 <= T0 + len(results)
    suites = [r for r in gh.requests if r.path.endswith("/check-suites")]
    assert suites[0].status == 200 and all(r.status == 304 and not r.counted for r in suites[1:]), \
        [r.status for r in suites]


def test_an_early_listed_suite_is_waited_for_even_without_settling(gh, api, pushed):  # noqa: F811
    bare, sha = pushed
    late = LateWorkflow(after_polls=2, suite_early=True, ci=RED.ci)
    gh.add_repo(REPO, bare_path=bare).late_workflows.append(late)
    results, event = drive(api, make_watch(sha, settle_seconds=0))
    assert any("check suite(s) not complete" in r.note for r in results)
    assert event["status"] == "failure"


def test_a_stale_app_suite_delays_green_until_the_start_grace(gh, api, pushed):  # noqa: F811
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare).stale_suite_apps.append("forgotten-app")
    _, event = drive(api, make_watch(sha, settle_seconds=0, start_grace_seconds=4))
    assert event["status"] == "success" and "forgotten-app" in event["message"]
    assert "CLONE_CI_START_GRACE_SECONDS" in event["message"]


def test_unreadable_check_suites_fall_back_to_the_settle_period(gh, api, pushed):  # noqa: F811
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare).late_workflows.append(RED)
    gh.inject(r"/check-suites$", 403, times=1, body={"message": "Resource not accessible by integration"})
    watch = make_watch(sha, settle_seconds=5)
    _, event = drive(api, watch)
    assert watch.has_checks is False and gh.count("GET", r"/check-suites$") == 1
    assert event["status"] == "failure"  # the settle period alone still caught the late workflow


def test_a_watch_serialised_before_the_rule_resumes_without_settling(gh, api, pushed):  # noqa: F811
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare)
    old = {"repo": REPO, "sha": sha, "deadline": T0 + 3600, "started": T0, "poll_seconds": 0.01,
           "start_grace_seconds": 120.0, "etag": None, "runs": [], "has_workflows": None, "errors": 0,
           "not_before": 0.0, "echo": {}}
    watch = CIWatch.from_dict(old)
    assert watch.settle_seconds == 0 and watch.has_checks is None
    _, event = drive(api, watch)
    assert event["status"] == "success"


# ------------------------------------------------------------------------------ through apoll()
def test_apoll_gives_the_same_verdict_and_retries_a_502_on_the_event_loop(gh, pushed):  # noqa: F811
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare).late_workflows.append(RED)
    gh.inject(r"/actions/runs$", 502, times=2)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def watch_it() -> dict:
        watch = make_watch(sha, settle_seconds=5)
        policy = RetryPolicy(retries=3, max_wait=0.05, first_wait=0.01)
        async with AsyncGitHubApi(GitHubEndpoint(gh.url, TOKEN), retry=policy, sleep=sleep) as client:
            for step in range(20):
                result = await apoll(client, watch, now=T0 + step)
                if result.event is not None:
                    assert watch.errors == 0
                    return result.event
        raise AssertionError("no verdict")

    event = asyncio.run(watch_it())
    assert event["status"] == "failure" and len(slept) == 2  # two 502s retried, not two poll backoffs
    assert [r.status for r in gh.requests[:3]] == [502, 502, 200]


def test_apoll_waits_a_rate_limit_out_from_its_headers(gh, pushed):  # noqa: F811
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare)
    gh.rate_limit_exhausted(reset_in_seconds=2, secondary=True, path_regex=r"/actions/runs$")
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def first_poll():
        policy = RetryPolicy(retries=2, max_wait=10, first_wait=0.01)
        async with AsyncGitHubApi(GitHubEndpoint(gh.url, TOKEN), retry=policy, sleep=sleep) as client:
            return await apoll(client, make_watch(sha), now=T0)

    result = asyncio.run(first_poll())
    assert slept == [2.0] and result.event is None and "in progress" in result.note


def test_the_worker_poll_is_not_retried(gh, api, pushed):  # noqa: F811
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare)
    gh.inject(r"/actions/runs$", 502, times=1)
    result = poll(api, make_watch(sha), now=T0)
    assert result.event is None and "502" in result.note and gh.total_requests == 1


def test_the_trigger_polls_on_its_event_loop_with_no_thread_and_retries_a_502(gh, pushed, endpoint_of,  # noqa: F811
                                                                                  monkeypatch, caplog):
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare).late_workflows.append(RED)
    endpoint_of(GitHubEndpoint(base_url=gh.url, token=TOKEN))
    gh.inject(r"/actions/runs$", 502, times=1)
    monkeypatch.setenv("CLONE_GITHUB_RETRY_MAX_WAIT_SECONDS", "0.05")

    def no_thread(*args, **kwargs):
        raise AssertionError("the trigger borrowed a triggerer thread")

    monkeypatch.setattr(asyncio, "to_thread", no_thread)
    events = collect(GitHubCITrigger("github_ci", trigger_watch(sha, poll_seconds=0.05, settle_seconds=0.3)))
    assert [e.payload["status"] for e in events] == ["failure"]  # the late red Lint seen while settling
    assert [r.status for r in gh.requests[:2]] == [502, 200]
    retried = [r.getMessage() for r in caplog.records if r.name == "clone.github.api"]
    assert any("answered 502; retrying" in m for m in retried), retried  # by the client, not a poll backoff
