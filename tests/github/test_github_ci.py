"""Watching GitHub Actions: ``poll`` step by step, ETags, interpretation, logs, failure evidence, the trigger.

Everything runs against the in-process fake GitHub API (``tests/fakes/github_api.py``) with real bare git
repos. The watch is driven one ``poll()`` at a time with an explicit ``now=``; nothing sleeps and hopes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import re
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import clone.triggers.ci as trigger_module
from clone.github.api import ApiAnswer, GitHubApi, RetryPolicy
from clone.github.ci import (
    MAX_ERROR_BACKOFF,
    CIWatch,
    PollResult,
    clean_log,
    failure_report,
    interpret,
    poll,
)
from clone.github.client import GitHubClient
from clone.github.connection import DEFAULT_API_URL, GitHubEndpoint
from clone.checks.redact import MASK
from clone.triggers.ci import GitHubCITrigger
from tests.fakes.github_api import CIOutcome, FakeGitHub, FakeJob
from tests.repos import make_remote_and_checkout

#: A distinctive token, so "the token never shows up" assertions mean something.
TOKEN = "tok-3f9c1e7a5b2d4c6e8f0a1b2c3d4e5f60"
REPO = "acme/widget"
T0 = 1_800_000_000.0  # logical clock for poll(now=...): only deadline and start grace depend on it
POLL = 0.01
GITHUB_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
FAKE_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"  # looks like a classic GitHub PAT


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A real bare repo with one pushed commit on main: (bare path, pushed sha). Read-only for tests."""
    from tests.repos import git

    root = tmp_path_factory.mktemp("ci-repos")
    checkout, bare = make_remote_and_checkout(root, "widget")
    sha = git(checkout, "rev-parse", "HEAD")
    assert git(bare, "rev-parse", "refs/heads/main") == sha
    return bare, sha


@pytest.fixture
def gh(tmp_path: Path):
    with FakeGitHub(token=TOKEN, repos_root=tmp_path / "gh") as server:
        yield server
        assert server.server_errors == []


@pytest.fixture
def api(gh: FakeGitHub):
    # The poll's client never retries: poll() backs off between its own calls.
    with GitHubApi(GitHubEndpoint(base_url=gh.url, token=TOKEN)) as client:
        yield client


@pytest.fixture
def client(gh: FakeGitHub):
    """The PyGithub client the one-shot calls (failure evidence) use."""
    with GitHubClient.for_token(gh.url, TOKEN, retry=RetryPolicy(retries=4, max_wait=0.05, first_wait=0.01),
                                throttle=False) as github:
        yield github


def make_watch(sha: str, repo: str = REPO, **overrides) -> CIWatch:
    values = {"repo": repo, "sha": sha, "deadline": T0 + 3600, "started": T0, "poll_seconds": POLL,
              "start_grace_seconds": 120.0}
    values.update(overrides)
    return CIWatch(**values)


def runs_requests(gh: FakeGitHub):
    return [r for r in gh.requests if r.path.endswith("/actions/runs")]


def drive(api: GitHubApi, watch: CIWatch, *, start: float = T0,
          limit: int = 20) -> tuple[list[PollResult], dict]:
    """Poll (one logical second apart) until an event; return every result and the event."""
    results = []
    for step in range(limit):
        result = poll(api, watch, now=start + step)
        results.append(result)
        if result.event is not None:
            return results, result.event
    raise AssertionError(f"no event after {limit} polls: {[r.note for r in results]}")


# ------------------------------------------------------------------------------------ 1. poll: outcomes
def test_waits_while_ci_has_not_started_then_reports_success(gh, api, pushed):
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare, start_after_polls=2, complete_after_polls=2)
    watch = make_watch(sha)

    first = poll(api, watch, now=T0)
    assert first.event is None and first.wait == POLL
    assert "not started" in first.note
    assert watch.has_workflows is True and watch.runs == []
    second = poll(api, watch, now=T0 + 1)
    assert second.event is None and "not started" in second.note
    assert gh.run_for(REPO, sha) is None

    third = poll(api, watch, now=T0 + 2)  # the run appears (queued)
    assert third.event is None and third.wait == POLL and "1 run(s) in progress" in third.note
    assert watch.runs[0]["status"] == "queued"
    fourth = poll(api, watch, now=T0 + 3)
    assert fourth.event is None and watch.runs[0]["status"] == "in_progress"

    final = poll(api, watch, now=T0 + 4)
    run = gh.run_for(REPO, sha)
    assert run is not None and run["conclusion"] == "success"
    assert final.event is not None
    assert final.event["status"] == "success"
    assert final.event["repo"] == REPO and final.event["sha"] == sha
    assert run["html_url"] in final.event["message"]
    assert [r["html_url"] for r in final.event["runs"]] == [run["html_url"]]
    assert final.event["runs"][0]["conclusion"] == "success"
    # the workflows endpoint was asked once, although two polls saw no run
    assert gh.count("GET", r"/actions/workflows$") == 1
    json.dumps(final.event)  # an event is plain JSON


def test_failed_run_is_a_failure_event(gh, api, pushed):
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare, ci=lambda sha, attempt: CIOutcome.failed())
    _, event = drive(api, make_watch(sha))
    assert event["status"] == "failure"
    assert event["runs"][0]["conclusion"] == "failure"
    assert gh.run_for(REPO, sha)["html_url"] in event["message"]


def test_repo_without_workflows_is_no_ci_after_one_workflows_request(gh, api, pushed):
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare, workflows=False)
    watch = make_watch(sha)

    result = poll(api, watch, now=T0)
    assert result.event is not None and result.event["status"] == "no_ci"
    assert "no GitHub Actions workflows" in result.event["message"]
    assert [r.path for r in gh.requests] == [f"/repos/{REPO}/actions/runs",
                                             f"/repos/{REPO}/actions/workflows"]
    assert watch.has_workflows is False

    again = poll(api, watch, now=T0 + 1)  # the answer is remembered: no second workflows request
    assert again.event is not None and again.event["status"] == "no_ci"
    assert gh.count("GET", r"/actions/workflows$") == 1
    assert len(runs_requests(gh)) == 2


def test_no_run_within_start_grace_is_no_ci(gh, api, pushed):
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare, start_after_polls=1000)
    watch = make_watch(sha, start_grace_seconds=120.0)

    assert poll(api, watch, now=T0).event is None
    almost = poll(api, watch, now=T0 + 119.5)
    assert almost.event is None and almost.wait == POLL

    result = poll(api, watch, now=T0 + 120)
    assert result.event is not None and result.event["status"] == "no_ci"
    assert "CLONE_CI_START_GRACE_SECONDS" in result.event["message"]
    assert sha[:12] in result.event["message"]
    assert gh.count("GET", r"/actions/workflows$") == 1


def test_deadline_reached_is_timeout_without_a_request(gh, api, pushed):
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare, complete_after_polls=100)
    watch = make_watch(sha, deadline=T0 + 60)
    assert poll(api, watch, now=T0).event is None
    asked = gh.total_requests

    result = poll(api, watch, now=T0 + 60)
    assert result.event is not None and result.event["status"] == "timeout"
    assert "CLONE_CI_TIMEOUT_MINUTES" in result.event["message"]
    assert result.event["runs"][0]["status"] == "queued"  # what was known at the deadline
    assert gh.total_requests == asked


def test_wrong_token_is_an_error_naming_the_connection(gh, pushed):
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare)
    with GitHubApi(GitHubEndpoint(base_url=gh.url, token="not-the-token")) as wrong:
        result = poll(wrong, make_watch(sha), now=T0)
    assert result.event is not None and result.event["status"] == "error"
    message = result.event["message"]
    assert "401" in message and "Bad credentials" in message
    assert "github_default connection" in message
    assert "not-the-token" not in json.dumps(result.event)


def test_unknown_repo_is_an_error(gh, api, pushed):
    _, sha = pushed
    result = poll(api, make_watch(sha, repo="acme/missing"), now=T0)
    assert result.event is not None and result.event["status"] == "error"
    assert "404" in result.event["message"] and "acme/missing" in result.event["message"]


# ------------------------------------------------------------------------- 1. poll: transient trouble
def test_server_errors_back_off_exponentially_then_recover(gh, api, pushed):
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare)
    gh.inject(r"/actions/runs$", 500, times=3)
    watch = make_watch(sha)

    waits, errors = [], []
    for step in range(3):
        result = poll(api, watch, now=T0 + step)
        assert result.event is None and "GitHub answered 500" in result.note
        waits.append(result.wait)
        errors.append(watch.errors)
    assert waits == [POLL, 2 * POLL, 4 * POLL]
    assert errors == [1, 2, 3]

    recovered = poll(api, watch, now=T0 + 3)
    assert recovered.event is None and recovered.wait == POLL and "in progress" in recovered.note
    assert watch.errors == 0
    done = poll(api, watch, now=T0 + 4)
    assert done.event is not None and done.event["status"] == "success"


def test_error_backoff_is_capped():
    watch = make_watch("0" * 40, poll_seconds=30.0, errors=20)
    with GitHubApi(GitHubEndpoint(base_url="http://127.0.0.1:9", token="x")) as unreachable:
        result = poll(unreachable, watch, now=T0)  # connection refused: a network error
    assert result.event is None and "network error" in result.note
    assert result.wait == MAX_ERROR_BACKOFF and watch.errors == 21


def test_primary_rate_limit_waits_until_the_reset(gh, api, pushed):
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare)
    reset = gh.rate_limit_exhausted(reset_in_seconds=120)
    watch = make_watch(sha)

    before = time.time()
    result = poll(api, watch, now=T0)
    assert result.event is None
    assert reset - time.time() - 1 <= result.wait <= reset - before + 1
    assert 115 <= result.wait <= 121
    assert "rate limited (403)" in result.note
    assert watch.errors == 0  # a rate limit is not an error: no exponential backoff

    assert poll(api, watch, now=T0 + 1).event is None  # the next poll goes through
    assert watch.runs and watch.runs[0]["status"] == "queued"


def test_secondary_rate_limit_waits_retry_after(gh, api, pushed):
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare)
    gh.rate_limit_exhausted(reset_in_seconds=7, secondary=True, status=429)
    gh.rate_limit_exhausted(reset_in_seconds=11, secondary=True, status=403)
    watch = make_watch(sha)

    first = poll(api, watch, now=T0)
    assert first.event is None and first.wait == 7.0 and "rate limited (429)" in first.note
    second = poll(api, watch, now=T0 + 1)
    assert second.event is None and second.wait == 11.0 and "rate limited (403)" in second.note
    assert watch.errors == 0


def test_rate_limited_workflows_request_waits(gh, api, pushed):
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare, start_after_polls=5)
    gh.rate_limit_exhausted(reset_in_seconds=9, secondary=True, path_regex=r"/actions/workflows$")
    watch = make_watch(sha)

    result = poll(api, watch, now=T0)
    assert result.event is None and result.wait == 9.0
    assert watch.has_workflows is None  # still unknown: asked again next time
    assert poll(api, watch, now=T0 + 1).event is None
    assert watch.has_workflows is True
    assert gh.count("GET", r"/actions/workflows$") == 2


def test_secondary_rate_limit_without_retry_after_waits_a_minute(gh, api, pushed):
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare)
    message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
    gh.inject(".", 403, body={"message": message, "documentation_url": "https://docs.github.com/rest"})
    result = poll(api, make_watch(sha), now=T0)
    assert result.event is None, result.event
    assert result.wait >= 60


def test_network_drop_backs_off_then_recovers(gh, api, pushed):
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare)
    gh.network_drop(r"/actions/runs$", times=2)
    watch = make_watch(sha)

    first = poll(api, watch, now=T0)
    second = poll(api, watch, now=T0 + 1)
    assert first.event is None and second.event is None
    assert "network error" in first.note and "network error" in second.note
    assert (first.wait, second.wait) == (POLL, 2 * POLL)
    assert watch.errors == 2

    _, event = drive(api, watch, start=T0 + 2)
    assert event["status"] == "success"
    assert watch.errors == 0
    assert [r.status for r in runs_requests(gh)][:2] == [None, None]  # really dropped, not answered


# --------------------------------------------------------------------------------------------- 2. ETag
def test_conditional_polls_get_uncounted_304_and_still_see_transitions(gh, api, pushed):
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare, start_after_polls=2, complete_after_polls=3)
    watch = make_watch(sha)

    results, event = drive(api, watch)
    assert event["status"] == "success"
    notes = [r.note for r in results[:-1]]
    assert ["not started" in n for n in notes] == [True, True, False, False, False]
    assert all("in progress" in n for n in notes[2:])

    requests = runs_requests(gh)
    #   no run (200), no run again (304), queued (200), in_progress (200), unchanged (304), completed (200)
    assert [r.status for r in requests] == [200, 304, 200, 200, 304, 200]
    assert "if-none-match" not in requests[0].headers
    assert all(r.headers.get("if-none-match") for r in requests[1:])
    assert [r.counted for r in requests] == [True, False, True, True, False, True]
    # every other request (the one workflows lookup, the one check-suites read once all runs were green)
    # counted; the two 304s did not
    assert gh.total_requests == len(requests) + 2 and gh.count("GET", r"/check-suites$") == 1
    assert gh.counted_requests == gh.total_requests - 2
    assert gh.rate_limit - gh.rate_limit_remaining == gh.counted_requests
    # the etag is refreshed by each 200: the last request sent the previous one, the watch holds the new one
    assert watch.etag and watch.etag != requests[-1].headers["if-none-match"]
    assert requests[-1].headers["if-none-match"] == requests[-2].headers["if-none-match"]


def test_cached_runs_survive_a_304(gh, api, pushed):
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare, complete_after_polls=100)
    watch = make_watch(sha)
    assert poll(api, watch, now=T0).event is None  # queued
    assert poll(api, watch, now=T0 + 1).event is None  # in_progress
    etag, cached = watch.etag, list(watch.runs)

    result = poll(api, watch, now=T0 + 2)
    assert runs_requests(gh)[-1].status == 304
    assert result.event is None and "1 run(s) in progress" in result.note
    assert watch.runs == cached and watch.etag == etag

    gh.set_run_state(REPO, sha, "completed", "failure")
    final = poll(api, watch, now=T0 + 3)
    assert runs_requests(gh)[-1].status == 200
    assert final.event is not None and final.event["status"] == "failure"
    assert watch.etag != etag


# ------------------------------------------------------------------------------------- 3. interpret
def _run(status: str, conclusion: str | None = None) -> dict:
    return {"status": status, "conclusion": conclusion}


@pytest.mark.parametrize(("runs", "expected"), [
    ([_run("completed", "success"), _run("in_progress")], "running"),
    ([_run("queued"), _run("completed", "failure")], "running"),
    ([_run("waiting")], "running"),
    ([_run("completed", "success")], "success"),
    ([_run("completed", "success"), _run("completed", "skipped"), _run("completed", "neutral")], "success"),
    ([_run("completed", "success"), _run("completed", "failure")], "failure"),
    ([_run("completed", "success"), _run("completed", "cancelled")], "failure"),
    ([_run("completed", "timed_out"), _run("completed", "skipped")], "failure"),
    ([_run("completed", "action_required")], "failure"),
    ([_run("completed", None)], "failure"),
])
def test_interpret(runs, expected):
    assert interpret(runs) == expected


# -------------------------------------------------------------------------------------- 4. clean_log
PEM = ("-----BEGIN RSA PRIVATE KEY-----\n"
       "MIIEowIBAAKCAQEAv1secretKEYmaterialLINEone0123456789abcdefABCDEF\n"
       "Zm9vYmFyc2VjcmV0S0VZbWF0ZXJpYWxMSU5FdHdvMDEyMzQ1Njc4OWFiY2RlZg==\n"
       "-----END RSA PRIVATE KEY-----")


def stamp(index: int, text: str) -> str:
    return f"2026-11-24T10:00:{index:02d}.1234567Z {text}"


def test_clean_log_strips_timestamps_and_ansi_and_keeps_the_tail():
    lines = [stamp(i, f"\x1b[36;1mline {i}\x1b[0m") for i in range(50)]
    text = "\ufeff" + "\n".join(lines) + "\n"

    cleaned = clean_log(text, max_lines=5)
    assert cleaned.splitlines() == [f"line {i}" for i in range(45, 50)]
    assert "\x1b" not in cleaned and "\ufeff" not in cleaned
    assert not GITHUB_TIMESTAMP.search(cleaned)

    everything = clean_log(text, max_lines=500)
    assert everything.splitlines() == [f"line {i}" for i in range(50)]  # first line's BOM went with its stamp


def test_clean_log_keeps_text_that_only_looks_like_a_date():
    text = stamp(0, "run at 2026-11-24T10:00:00Z finished") + "\n" + "\x1b[31mred\x1b[0m plain"
    assert clean_log(text, 10).splitlines() == ["run at 2026-11-24T10:00:00Z finished", "red plain"]


def test_clean_log_masks_tokens_and_private_keys():
    body = [stamp(0, "setup"), stamp(1, f"echo \x1b[33m{FAKE_TOKEN}\x1b[0m"),
            *[stamp(2 + i, line) for i, line in enumerate(PEM.splitlines())], stamp(9, "done")]
    cleaned = clean_log("\n".join(body), max_lines=50)
    assert FAKE_TOKEN not in cleaned and "ghp_" not in cleaned
    assert "PRIVATE KEY" not in cleaned and "secretKEYmaterial" not in cleaned
    assert "Zm9vYmFyc2VjcmV0" not in cleaned
    assert cleaned.count(MASK) == 2
    assert cleaned.splitlines()[0] == "setup" and cleaned.splitlines()[-1] == "done"


def test_clean_log_masks_a_private_key_cut_by_the_tail():
    lines = ["before", *PEM.splitlines(), "after 1", "after 2"]
    cleaned = clean_log("\n".join(lines), max_lines=4)  # tail starts at the key's second body line
    assert "Zm9vYmFyc2VjcmV0" not in cleaned
    assert "PRIVATE KEY" not in cleaned


# --------------------------------------------------------------------------------- 5. failure_report
def two_job_failure(sha: str, attempt: int) -> CIOutcome:
    log = "\n".join(f"test line {i}" for i in range(20)).replace("test line 18", f"test line 18 {FAKE_TOKEN}")
    steps = [("Set up job", "success"), ("Install", "success"), ("pytest", "failure"),
             ("Complete job", "success")]
    return CIOutcome("failure", [FakeJob("lint"), FakeJob("tests", "failure", steps, log)])


def test_failure_report_names_the_failing_job_and_step_with_a_clean_bounded_log(gh, api, client, pushed):
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare, ci=two_job_failure)
    _, event = drive(api, make_watch(sha))
    assert event["status"] == "failure"

    report = failure_report(client, REPO, event["runs"], max_lines=8)
    assert "job tests: failure" in report
    assert "lint" not in report  # the green job is not evidence
    assert "Failing step(s): pytest" in report
    assert "Install" not in report
    assert re.search(r"URL: https://github\.com/acme/widget/actions/runs/\d+/job/\d+", report)

    log = report.split("```\n", 1)[1].rsplit("\n```", 1)[0]
    assert len(log.splitlines()) == 8
    assert "test line 19" in log and "test line 16" not in log
    assert "Process completed with exit code 1." in log
    assert log.splitlines()[-1] == "Cleaning up orphan processes"
    assert not GITHUB_TIMESTAMP.search(log) and "\x1b" not in log and "\ufeff" not in log
    assert FAKE_TOKEN not in report and f"test line 18 {MASK}" in log

    downloads = [r for r in gh.requests if r.path.startswith("/_downloads/")]
    assert len(downloads) == 1
    assert downloads[0].status == 200
    assert "authorization" not in downloads[0].headers
    log_requests = [r for r in gh.requests if r.path.endswith("/logs")]
    assert len(log_requests) == 1 and log_requests[0].status == 302
    assert log_requests[0].headers.get("authorization") == f"token {TOKEN}"
    assert TOKEN not in report


def test_failure_report_survives_an_unavailable_log(gh, api, client, pushed):
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare, ci=two_job_failure)
    _, event = drive(api, make_watch(sha))
    gh.inject(r"/actions/jobs/\d+/logs$", 500, times=5)  # longer than the 5 attempts

    report = failure_report(client, REPO, event["runs"], max_lines=8)
    assert "job tests: failure" in report and "Failing step(s): pytest" in report
    assert "(log unavailable:" in report and "500 after 5 attempts" in report


def test_failure_report_of_green_runs_is_empty(gh, api, client, pushed):
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare)
    _, event = drive(api, make_watch(sha))
    assert event["status"] == "success"
    asked = gh.total_requests
    assert failure_report(client, REPO, event["runs"], max_lines=8) == ""
    assert gh.total_requests == asked


# ---------------------------------------------------------------------------------------- 6. trigger
def trigger_watch(sha: str, **overrides) -> dict:
    now = time.time()
    values = {"deadline": now + 30, "started": now, "echo": {"attempt": 1}}
    values.update(overrides)
    return make_watch(sha, **values).to_dict()


def collect(trigger: GitHubCITrigger, limit: float = 15.0) -> list:
    async def gather() -> list:
        return [event async for event in trigger.run()]

    return asyncio.run(asyncio.wait_for(gather(), timeout=limit))


@pytest.fixture
def endpoint_of(monkeypatch: pytest.MonkeyPatch):
    """Make the trigger's connection lookup answer ``endpoint`` (recording the conn ids asked for)."""
    asked: list[str] = []

    def install(endpoint: GitHubEndpoint | Exception) -> list[str]:
        async def fake_aendpoint_for(conn_id: str) -> GitHubEndpoint:
            asked.append(conn_id)
            if isinstance(endpoint, Exception):
                raise endpoint
            return endpoint

        monkeypatch.setattr(trigger_module, "aendpoint_for", fake_aendpoint_for)
        return asked

    return install


def test_trigger_serialization_round_trips(pushed):
    _, sha = pushed
    trigger = GitHubCITrigger("github_ci", trigger_watch(sha))
    classpath, kwargs = trigger.serialize()
    json.dumps(kwargs)  # stored in the metadata database as JSON

    again = GitHubCITrigger(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    module_name, _, class_name = classpath.rpartition(".")
    assert getattr(importlib.import_module(module_name), class_name) is GitHubCITrigger
    assert CIWatch.from_dict(kwargs["watch"]).to_dict() == trigger.watch
    assert TOKEN not in json.dumps(kwargs)


def test_trigger_polls_until_success_and_yields_one_small_event(gh, pushed, endpoint_of):
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare, start_after_polls=1, complete_after_polls=2)
    asked = endpoint_of(GitHubEndpoint(base_url=gh.url, token=TOKEN))

    events = collect(GitHubCITrigger("github_ci", trigger_watch(sha)))
    assert asked == ["github_ci"]
    assert len(events) == 1
    payload = events[0].payload
    assert payload["status"] == "success" and payload["sha"] == sha and payload["repo"] == REPO
    assert payload["echo"] == {"attempt": 1}
    assert payload["runs"][0]["html_url"] == gh.run_for(REPO, sha)["html_url"]
    assert len(runs_requests(gh)) >= 4  # waited for the start, then for the run to finish
    encoded = json.dumps(payload)
    assert len(encoded) < 4096
    assert TOKEN not in encoded


def test_trigger_reports_a_connection_it_cannot_read(gh, pushed, endpoint_of):
    _, sha = pushed
    endpoint_of(RuntimeError("The conn_id `github_ci` isn't defined"))
    events = collect(GitHubCITrigger("github_ci", trigger_watch(sha)))
    assert len(events) == 1
    payload = events[0].payload
    assert payload["status"] == "error"
    assert "github_ci" in payload["message"] and "isn't defined" in payload["message"]
    assert gh.total_requests == 0
    assert len(json.dumps(payload)) < 4096


def test_trigger_turns_a_wrong_token_into_an_error_event(gh, pushed, endpoint_of):
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare)
    endpoint_of(GitHubEndpoint(base_url=gh.url, token="wrong-token-value"))
    events = collect(GitHubCITrigger("github_ci", trigger_watch(sha)))
    assert [e.payload["status"] for e in events] == ["error"]
    assert "401" in events[0].payload["message"]
    assert "wrong-token-value" not in json.dumps(events[0].payload)


def test_trigger_stops_at_the_deadline(gh, pushed, endpoint_of):
    bare, sha = pushed
    gh.add_repo(REPO, bare_path=bare, complete_after_polls=10_000)
    endpoint_of(GitHubEndpoint(base_url=gh.url, token=TOKEN))
    now = time.time()
    started = time.monotonic()
    events = collect(GitHubCITrigger("github_ci", trigger_watch(sha, deadline=now + 0.5, started=now)))
    assert [e.payload["status"] for e in events] == ["timeout"]
    assert time.monotonic() - started < 5
    assert events[0].payload["runs"][0]["status"] in ("queued", "in_progress")


# --------------------------------------------------------------------------- 7. rate limits, endpoints
@pytest.mark.parametrize(("status", "headers", "expected"), [
    (200, {}, None),
    (304, {"retry-after": "5"}, None),
    (404, {"retry-after": "5"}, None),
    (500, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(T0) + 30)}, None),
    (403, {}, None),  # a permission problem, not a rate limit
    (403, {"x-ratelimit-remaining": "12", "x-ratelimit-reset": str(int(T0) + 30)}, None),
    (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(T0) + 30)}, 30.0),
    (429, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(T0) + 90)}, 90.0),
    (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(T0) - 10)}, 1.0),  # reset passed
    (403, {"x-ratelimit-remaining": "0"}, 60.0),  # no reset header
    (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "soon"}, 60.0),
    (403, {"retry-after": "17"}, 17.0),
    (429, {"retry-after": "17", "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(T0) + 300)}, 17.0),
    (429, {"retry-after": " 8 "}, 8.0),
    (429, {}, 60.0),
    (429, {"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, 60.0),
])
def test_rate_limit_wait(status, headers, expected):
    assert ApiAnswer(status=status, headers=headers).rate_limit_wait(now=T0) == expected


def test_rate_limit_wait_defaults_to_the_wall_clock():
    reset = int(time.time()) + 100
    answer = ApiAnswer(403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)})
    wait = answer.rate_limit_wait()
    assert 98 <= wait <= 100


@pytest.mark.parametrize(("host", "expected"), [
    ("", DEFAULT_API_URL),
    (None, DEFAULT_API_URL),
    ("   ", DEFAULT_API_URL),
    ("github.example.com/api/v3", "https://github.example.com/api/v3"),
    (" api.github.com ", "https://api.github.com"),
    ("https://github.example.com/api/v3/", "https://github.example.com/api/v3"),
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
])
def test_endpoint_from_connection(host, expected):
    endpoint = GitHubEndpoint.from_connection(SimpleNamespace(host=host, password=TOKEN))
    assert endpoint.base_url == expected
    assert endpoint.token == TOKEN


def test_endpoint_without_password_has_no_token():
    assert GitHubEndpoint.from_connection(SimpleNamespace(host="", password=None)).token == ""


def test_endpoint_and_api_repr_hide_the_token():
    endpoint = GitHubEndpoint(base_url="https://api.github.com", token=TOKEN)
    assert TOKEN not in repr(endpoint) and TOKEN not in str(endpoint)
    assert "https://api.github.com" in repr(endpoint)
    with GitHubApi(endpoint) as client:
        assert TOKEN not in repr(client)
    assert dataclasses.replace(endpoint, token="other").token == "other"  # still a plain dataclass


def test_watch_round_trips_through_json(pushed):
    _, sha = pushed
    watch = make_watch(sha, etag='"abc"', runs=[{"id": 1, "status": "queued"}], has_workflows=True, errors=2,
                       echo={"k": "v"})
    assert CIWatch.from_dict(json.loads(json.dumps(watch.to_dict()))) == watch
