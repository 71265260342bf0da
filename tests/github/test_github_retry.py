"""PyGithub (through CloneRetry, PyGithub's GithubRetry bounded by RetryPolicy) retries transient
failures for every one-shot caller: 502 bursts on each GitHub call of the
chain (failing-jobs list, log download, re-run, PR open/merge, repo creation) still succeed; a
non-idempotent POST is retried only when it cannot have been acted on, and a retried create or
merge that did happen the first time is looked up instead of failing; rate-limit headers set the
wait; a permanent 502 fails with the attempts named. Against the local GitHub double."""

from __future__ import annotations

from pathlib import Path

import pytest

from clone.errors import GitHubError
from clone.github import pulls
from clone.github.api import GitHubApi
from clone.github.ci import CIWatch, failure_report, poll, rerun_failed_jobs, run_attempts
from clone.github.client import GitHubClient, RetryPolicy
from clone.github.connection import GitHubEndpoint
from clone.github.repos import GitHubUnavailable, create_private_repo, ensure_private_repo, get_repo
from tests.fakes.github_api import CIOutcome, FakeGitHub, FakeJob
from tests.repos import git, make_remote_and_checkout

TOKEN = "tok-retry"
REPO = "acme/widget"
FAST = RetryPolicy(retries=4, max_wait=0.05, first_wait=0.01)


@pytest.fixture
def gh(tmp_path: Path):
    with FakeGitHub(token=TOKEN, repos_root=tmp_path / "gh") as server:
        yield server
        assert server.server_errors == []


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def api(gh: FakeGitHub, waits: list[float]):
    """The PyGithub client every one-shot call uses (no write throttling: the double needs none)."""
    with GitHubClient.for_token(gh.url, TOKEN, retry=FAST, sleep=waits.append, throttle=False) as client:
        yield client


@pytest.fixture
def poller(gh: FakeGitHub):
    """The CI poll's own small client (it backs off between its own calls)."""
    with GitHubApi(GitHubEndpoint(base_url=gh.url, token=TOKEN)) as client:
        yield client


@pytest.fixture
def work(tmp_path: Path, gh: FakeGitHub) -> tuple[Path, str]:
    """acme/widget with main and a pushed branch ``work`` one commit ahead: (bare, work sha)."""
    checkout, bare = make_remote_and_checkout(tmp_path, "widget")
    git(checkout, "checkout", "-q", "-b", "work")
    (checkout / "feature.txt").write_text("new\n")
    git(checkout, "add", "feature.txt")
    git(checkout, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "feature")
    git(checkout, "push", "-q", "origin", "work")
    return bare, git(checkout, "rev-parse", "HEAD")


def failed_ci(sha: str, attempt: int) -> CIOutcome:
    steps = [("Set up job", "success"), ("pytest", "failure")]
    return CIOutcome("failure", [FakeJob("tests", "failure", steps, "E   assert 1 == 2")])


def finished_run(gh: FakeGitHub, api: GitHubApi, bare: Path, sha: str) -> list[dict]:
    gh.add_repo(REPO, bare_path=bare, ci=failed_ci)
    watch = CIWatch(repo=REPO, sha=sha, deadline=2e9, started=1e9, poll_seconds=1, start_grace_seconds=60)
    for step in range(20):
        result = poll(api, watch, now=1e9 + step)
        if result.event is not None:
            assert result.event["status"] == "failure"
            return result.event["runs"]
    raise AssertionError("CI did not finish")


def test_a_502_burst_on_the_jobs_list_and_the_log_download_still_gives_the_report(gh, api, poller, work,
                                                                                   waits):
    runs = finished_run(gh, poller, *work)
    gh.inject(r"/actions/runs/\d+/jobs$", 502, times=3)
    gh.inject(r"/actions/jobs/\d+/logs$", 502, times=3)
    report = failure_report(api, REPO, runs, max_lines=5)
    assert "job tests: failure" in report and "assert 1 == 2" in report and "log unavailable" not in report
    assert gh.count("GET", r"/jobs$") == 4 and gh.count("GET", r"/logs$") == 4
    assert len(waits) == 6 and all(0 < w <= FAST.max_wait for w in waits)


def test_a_rerun_survives_a_502_burst_and_a_500(gh, api, poller, work):
    runs = finished_run(gh, poller, *work)
    gh.inject("rerun-failed-jobs$", 502, times=2)
    gh.inject("rerun-failed-jobs$", 500, times=1)  # a re-run is idempotent: any 5xx is retried
    assert rerun_failed_jobs(api, REPO, runs[0]["id"]) is True
    assert gh.count("POST", "rerun-failed-jobs$") == 4
    assert gh.run_for(REPO, work[1])["run_attempt"] == 2


def test_opening_and_merging_a_pr_survive_502_bursts(gh, api, work):
    bare, sha = work
    gh.add_repo(REPO, bare_path=bare)
    gh.inject(r"/pulls$", 502, times=3, method="POST")
    pull = pulls.open_pull(api, REPO, head="work", base="main", title="t", body="b")
    assert pull["number"] == 1 and gh.count("POST", r"/pulls$") == 4
    gh.inject(r"/merge$", 503, times=3)
    assert pulls.merge(api, REPO, 1, sha) == sha
    assert gh.repo(REPO).bare.branch_sha("main") == sha


def test_a_pr_opened_or_merged_whose_answer_was_lost_is_looked_up_not_failed(gh, api, work):
    bare, sha = work
    gh.add_repo(REPO, bare_path=bare)
    gh.inject(r"/pulls$", 502, method="POST", after=True)  # opened, but the gateway lost the answer
    pull = pulls.open_pull(api, REPO, head="work", base="main", title="t", body="b")
    assert pull["number"] == 1 and len(gh.repo(REPO).pulls) == 1
    gh.network_drop(r"/merge$", method="PUT", after=True)  # merged, the connection dropped
    assert pulls.merge(api, REPO, 1, sha) == sha
    assert gh.count("PUT", r"/merge$") == 2 and gh.repo(REPO).bare.branch_sha("main") == sha


def test_repo_creation_survives_a_502_burst_and_a_lost_answer(gh, api):
    gh.inject(r"^/user/repos$", 502, times=2, method="POST")
    repo, created = ensure_private_repo(api, owner=None, name="notes", description="d", recorded=None,
                                        is_ours=lambda repo: True)
    assert created and repo.full_name == "clone-bot/notes" and gh.count("POST") == 3
    gh.network_drop(r"^/user/repos$", method="POST", after=True)  # created; the answer never came
    repo, created = ensure_private_repo(api, owner=None, name="other", description="d", recorded=None,
                                        is_ours=lambda repo: True)
    assert repo.full_name == "clone-bot/other" and not created  # found by its name, not a second one
    assert len(list(gh.repos_root.rglob("*.git"))) == 2


def test_a_post_is_not_retried_on_a_500_or_a_read_timeout(gh, api, work, waits):
    gh.add_repo(REPO, bare_path=work[0])
    gh.inject(r"/pulls$", 500, method="POST")  # GitHub itself failed: it may have opened the PR
    with pytest.raises(GitHubError, match=r"POST acme/widget pulls answered 500: Internal Server Error$"):
        pulls.open_pull(api, REPO, head="work", base="main", title="t", body="b")
    assert gh.count("POST", r"/pulls$") == 1
    with GitHubClient.for_token(gh.url, TOKEN, retry=FAST, sleep=waits.append, throttle=False,
                                timeout=1) as slow:
        gh.inject(r"/pulls$", 0, method="POST", after=True, delay=2.0)  # opens it, answers too late
        with pytest.raises(GitHubError, match=r"POST acme/widget pulls: GitHub API unreachable.*ReadTimeout"):
            pulls.open_pull(slow, REPO, head="work", base="main", title="t", body="b")
        assert gh.count("POST", r"/pulls$") == 2 and len(gh.repo(REPO).pulls) == 1 and waits == []
        gh.inject(r"/pulls$", 0, method="GET", after=True, delay=2.0)  # a GET is retried after a timeout
        assert pulls.open_pull(slow, REPO, head="work", base="main", title="t", body="b")["number"] == 1
        assert gh.count("GET", r"/pulls$") == 4 and len(waits) == 1  # 1 + 1 + (timed out, retried)


def test_a_permanent_502_fails_after_the_bounded_retries_naming_them(gh, api, waits):
    gh.add_repo(REPO)
    gh.inject(r"/actions/runs$", 502, times=100)
    with pytest.raises(GitHubError, match=r"GET /repos/acme/widget/actions/runs answered 502 after 5 attempts: Bad Gateway"):
        run_attempts(api, REPO, "0" * 40)
    assert gh.count("GET", r"/actions/runs$") == 5 and len(waits) == 4
    assert waits == sorted(waits)  # backing off (capped at max_wait)


def test_retry_after_and_rate_limit_reset_set_the_wait(gh, waits):
    gh.add_repo(REPO)
    policy = RetryPolicy(retries=2, max_wait=30)
    with GitHubClient.for_token(gh.url, TOKEN, retry=policy, sleep=waits.append, throttle=False) as api:
        gh.inject(f"^/repos/{REPO}$", 503, headers={"Retry-After": "7"})
        assert get_repo(api, REPO) is not None and waits == [7.0]
        gh.rate_limit_exhausted(reset_in_seconds=20, path_regex=f"^/repos/{REPO}$")
        assert get_repo(api, REPO) is not None
        assert 18 <= waits[1] <= 21
        gh.rate_limit_exhausted(reset_in_seconds=600, path_regex=f"^/repos/{REPO}$")  # beyond max_wait
        asked = gh.count("GET", f"^/repos/{REPO}$")
        with pytest.raises(GitHubUnavailable, match="403"):
            get_repo(api, REPO)
        assert gh.count("GET", f"^/repos/{REPO}$") == asked + 1 and len(waits) == 2  # failed, not slept on
        gh.rate_limit_exhausted(reset_in_seconds=5, secondary=True, path_regex=r"^/user/repos$", status=429)
        repo = create_private_repo(api, "clone-bot", "limited", "d", organisation=False)
        assert repo is not None and waits[2] == 5.0  # a rate-limited POST was not acted on: sent again
        assert gh.count("POST", r"^/user/repos$") == 2


def test_the_ci_poll_is_not_retried_twice(gh, poller, work, waits):
    gh.add_repo(REPO, bare_path=work[0])
    gh.inject(r"/actions/runs$", 502)
    watch = CIWatch(repo=REPO, sha=work[1], deadline=2e9, started=1e9, poll_seconds=3, start_grace_seconds=60)
    result = poll(poller, watch, now=1e9)
    assert result.event is None and "502" in result.note and result.wait == 3
    assert gh.count("GET", r"/actions/runs$") == 1 and waits == []


def test_the_retry_knobs_come_from_the_environment_and_are_validated():
    assert RetryPolicy.from_env({}) == RetryPolicy(retries=4, max_wait=60.0)
    assert RetryPolicy.from_env({"CLONE_GITHUB_RETRIES": "0", "CLONE_GITHUB_RETRY_MAX_WAIT_SECONDS": "5"}) \
        == RetryPolicy(retries=0, max_wait=5.0)
    from clone.errors import ConfigError
    with pytest.raises(ConfigError, match="CLONE_GITHUB_RETRIES='many' is not a whole number"):
        RetryPolicy.from_env({"CLONE_GITHUB_RETRIES": "many"})
