"""Tests of the fake GitHub API server, driven with httpx and PyGithub."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import github
import httpx
import pytest

from tests.fakes.github_api import CIOutcome, FakeGitHub, FakeJob

TOKEN = "tok"
GIT_ID = ["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"]


def git(*args: str, cwd: Path | None = None) -> str:
    cmd = ["git", *GIT_ID, *(["-C", str(cwd)] if cwd else []), *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def commit(work: Path, files: dict[str, str], message: str = "change") -> str:
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", message, cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


@pytest.fixture
def gh(tmp_path):
    with FakeGitHub(token=TOKEN, repos_root=tmp_path / "gh") as server:
        yield server
        assert server.server_errors == []


@pytest.fixture
def api(gh):
    with httpx.Client(base_url=gh.url, headers={"Authorization": f"token {TOKEN}"}, timeout=10) as client:
        yield client


@pytest.fixture
def pygh(gh):
    client = github.Github(base_url=gh.url, auth=github.Auth.Token(TOKEN), retry=None,
                           seconds_between_requests=0, seconds_between_writes=0)
    yield client
    client.close()


@pytest.fixture
def pushed(tmp_path):
    """A bare repo with one commit on main pushed from a work tree: (bare, work, sha)."""
    bare, work = tmp_path / "origin.git", tmp_path / "work"
    git("init", "-q", "--bare", "-b", "main", str(bare))
    git("init", "-q", "-b", "main", str(work))
    sha = commit(work, {"README.md": "hello\n"}, "first")
    git("remote", "add", "origin", str(bare), cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    return bare, work, sha


def runs(api: httpx.Client, repo: str, **params) -> list[dict]:
    answer = api.get(f"/repos/{repo}/actions/runs", params=params)
    assert answer.status_code == 200
    return answer.json()["workflow_runs"]


# ------------------------------------------------------------------------------------------ auth/etag
def test_auth_required(gh, pygh):
    assert httpx.get(f"{gh.url}/user").json() == {"message": "Bad credentials",
                                                  "documentation_url": "https://docs.github.com/rest"}
    assert httpx.get(f"{gh.url}/user").status_code == 401
    assert httpx.get(f"{gh.url}/user", headers={"Authorization": "token nope"}).status_code == 401
    bearer = httpx.get(f"{gh.url}/user", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 200 and bearer.json()["login"] == "clone-bot"
    assert pygh.get_user().login == "clone-bot"
    assert gh.requests[0].status == 401 and not gh.requests[0].counted
    assert gh.counted_requests == 2 and gh.total_requests == 5
    assert gh.count("GET", r"^/user$") == 5


def test_etag_304_not_counted(gh, api):
    gh.add_repo("acme/widget")
    first = api.get("/repos/acme/widget")
    etag = first.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]+"', etag)
    remaining = int(first.headers["X-RateLimit-Remaining"])
    assert first.headers["X-RateLimit-Limit"] == "5000" and int(first.headers["X-RateLimit-Reset"]) > 0
    again = api.get("/repos/acme/widget", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert int(again.headers["X-RateLimit-Remaining"]) == remaining
    assert gh.counted_requests == 1 and gh.total_requests == 2
    assert api.get("/repos/acme/widget", headers={"If-None-Match": '"stale"'}).status_code == 200
    assert gh.counted_requests == 2
    assert api.get("/repos/acme/nothing").json()["message"] == "Not Found"
    assert api.get("/no/such/route").status_code == 404


# ----------------------------------------------------------------------------------------------- CI
def test_run_lifecycle_by_poll_count(gh, api, pygh):
    gh.add_repo("acme/widget", start_after_polls=2, complete_after_polls=2)
    sha = "a" * 40
    seen = []
    for _ in range(6):
        listed = runs(api, "acme/widget", head_sha=sha)
        seen.append(listed[0]["status"] if listed else None)
    assert seen == [None, None, "queued", "in_progress", "completed", "completed"]
    run = runs(api, "acme/widget", head_sha=sha)[0]
    assert run["conclusion"] == "success" and run["head_sha"] == sha and run["run_attempt"] == 1
    assert run["head_branch"] == "main" and run["event"] == "push"
    repo = pygh.get_repo("acme/widget")
    (py_run,) = list(repo.get_workflow_runs(head_sha=sha))
    assert (py_run.id, py_run.status, py_run.conclusion) == (run["id"], "completed", "success")
    assert api.get(f"/repos/acme/widget/actions/runs/{run['id']}").json()["status"] == "completed"


def test_get_run_by_id_counts_as_poll_and_forced_state(gh, api):
    gh.add_repo("acme/widget", complete_after_polls=3)
    (run,) = runs(api, "acme/widget", head_sha="b" * 40)
    statuses = [api.get(f"/repos/acme/widget/actions/runs/{run['id']}").json()["status"] for _ in range(3)]
    assert statuses == ["in_progress", "in_progress", "completed"]
    forced = gh.set_run_state("acme/widget", "c" * 40, "completed", conclusion="cancelled")
    assert runs(api, "acme/widget", head_sha="c" * 40)[0]["conclusion"] == "cancelled"
    assert gh.run_for("acme/widget", "c" * 40)["id"] == forced["id"]


def test_repo_without_workflows_never_gets_runs(gh, api):
    gh.add_repo("acme/plain", workflows=False)
    for _ in range(5):
        assert runs(api, "acme/plain", head_sha="d" * 40) == []
    assert api.get("/repos/acme/plain/actions/workflows").json() == {"total_count": 0, "workflows": []}
    gh.add_repo("acme/ci")
    assert api.get("/repos/acme/ci/actions/workflows").json()["total_count"] == 1


def test_runs_only_for_commits_in_bare_repo(gh, api, pushed):
    bare, work, sha = pushed
    gh.add_repo("acme/real", bare_path=bare, complete_after_polls=0)
    for _ in range(3):
        assert runs(api, "acme/real", head_sha="e" * 40) == []
    (run,) = runs(api, "acme/real", head_sha=sha)
    assert run["status"] == "completed" and run["head_branch"] == "main"
    git("checkout", "-q", "-b", "feature", cwd=work)
    feature_sha = commit(work, {"x.txt": "x"})
    assert runs(api, "acme/real", head_sha=feature_sha) == []  # not pushed yet
    git("push", "-q", "origin", "feature", cwd=work)
    (by_branch,) = runs(api, "acme/real", branch="feature")
    assert (by_branch["head_sha"], by_branch["head_branch"]) == (feature_sha, "feature")
    assert len(runs(api, "acme/real")) == 2


def test_auto_workflows_follow_the_commit_tree(gh, api, pushed):
    bare, work, plain_sha = pushed
    gh.add_repo("acme/auto", bare_path=bare, workflows="auto")
    assert runs(api, "acme/auto", head_sha=plain_sha) == []
    ci_sha = commit(work, {".github/workflows/ci.yml": "on: push\n"})
    git("push", "-q", "origin", "main", cwd=work)
    assert len(runs(api, "acme/auto", head_sha=ci_sha)) == 1
    workflows = api.get("/repos/acme/auto/actions/workflows").json()
    assert [w["path"] for w in workflows["workflows"]] == [".github/workflows/ci.yml"]


def test_failed_jobs_and_steps(gh, api, pygh):
    def ci(sha, attempt):
        lint = FakeJob("lint")
        tests = FakeJob("tests", "failure", [("Set up job", "success"), ("Run pytest", "failure"),
                                             ("Upload", "skipped")], log="E assert 1 == 2")
        return CIOutcome("failure", [lint, tests])

    gh.add_repo("acme/widget", ci=ci, complete_after_polls=1)
    sha = "f" * 40
    (run,) = runs(api, "acme/widget", head_sha=sha)
    queued_jobs = api.get(f"/repos/acme/widget/actions/runs/{run['id']}/jobs").json()["jobs"]
    assert {j["status"] for j in queued_jobs} == {"queued"}
    assert runs(api, "acme/widget", head_sha=sha)[0]["conclusion"] == "failure"
    py_run = pygh.get_repo("acme/widget").get_workflow_run(run["id"])
    jobs = {job.name: job for job in py_run.jobs()}
    assert jobs["lint"].conclusion == "success" and jobs["tests"].conclusion == "failure"
    steps = [(s.name, s.status, s.conclusion, s.number) for s in jobs["tests"].steps]
    assert steps == [("Set up job", "completed", "success", 1), ("Run pytest", "completed", "failure", 2),
                     ("Upload", "completed", "skipped", 3)]
    assert jobs["tests"].html_url.endswith(f"/actions/runs/{run['id']}/job/{jobs['tests'].id}")


def test_job_log_redirect_and_plain_download(gh, api, pygh):
    gh.add_repo("acme/widget", ci=lambda sha, attempt: CIOutcome.failed(log="boom\nsecond line"),
                complete_after_polls=0)
    (run,) = runs(api, "acme/widget", head_sha="1" * 40)
    (job,) = api.get(f"/repos/acme/widget/actions/runs/{run['id']}/jobs").json()["jobs"]
    answer = api.get(f"/repos/acme/widget/actions/jobs/{job['id']}/logs")
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(gh.url + "/_downloads/") and "/repos/" not in location
    counted = gh.counted_requests
    download = httpx.get(location)  # no Authorization header, like a pre-signed URL
    assert download.status_code == 200 and download.headers["Content-Type"].startswith("text/plain")
    assert gh.counted_requests == counted
    text = download.text.lstrip("\ufeff")
    assert "\x1b[" in text and "boom" in text and "##[error]" in text
    for line in text.splitlines():
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z ", line), line
    stripped = [re.sub(r"\x1b\[[0-9;]*m", "", line.split(" ", 1)[1]) for line in text.splitlines()]
    assert "boom" in stripped and "##[error]Process completed with exit code 1." in stripped
    assert httpx.get(location.split("?")[0]).status_code == 403  # the signature is required
    py_job = pygh.get_repo("acme/widget").get_workflow_run(run["id"]).jobs()[0]
    assert py_job.logs_url().startswith(gh.url + "/_downloads/job-logs/")
    followed = api.get(f"/repos/acme/widget/actions/jobs/{job['id']}/logs", follow_redirects=True)
    assert followed.status_code == 200 and "boom" in followed.text


def test_rerun_failed_jobs_second_attempt(gh, api, pygh):
    def ci(sha, attempt):
        return CIOutcome.failed() if attempt == 1 else CIOutcome()

    gh.add_repo("acme/flaky", ci=ci, complete_after_polls=1)
    sha = "2" * 40
    runs(api, "acme/flaky", head_sha=sha)
    (run,) = runs(api, "acme/flaky", head_sha=sha)
    assert (run["conclusion"], run["run_attempt"]) == ("failure", 1)
    py_run = pygh.get_repo("acme/flaky").get_workflow_run(run["id"])
    assert py_run.rerun_failed_jobs() is True
    again = api.get(f"/repos/acme/flaky/actions/runs/{run['id']}").json()
    assert (again["status"], again["run_attempt"]) == ("completed", 2)  # this GET was the one poll needed
    assert again["conclusion"] == "success" and again["previous_attempt_url"].endswith("/attempts/1")
    jobs_url = f"/repos/acme/flaky/actions/runs/{run['id']}/jobs"
    assert [j["run_attempt"] for j in api.get(jobs_url).json()["jobs"]] == [2]
    every = api.get(jobs_url, params={"filter": "all"}).json()["jobs"]
    assert sorted(j["run_attempt"] for j in every) == [1, 2]


def test_rerun_while_running_is_refused(gh, api):
    gh.add_repo("acme/widget", complete_after_polls=5)
    (run,) = runs(api, "acme/widget", head_sha="3" * 40)
    answer = api.post(f"/repos/acme/widget/actions/runs/{run['id']}/rerun-failed-jobs")
    assert answer.status_code == 403


# -------------------------------------------------------------------------------------------- repos
def test_create_user_repo_is_a_real_bare_repo(gh, pygh, tmp_path):
    repo = pygh.get_user().create_repo("newrepo", private=True, description="made by test")
    assert repo.full_name == "clone-bot/newrepo" and repo.private and repo.default_branch == "main"
    bare = tmp_path / "gh" / "clone-bot" / "newrepo.git"
    assert repo.clone_url == bare.resolve().as_uri() and repo.ssh_url == repo.clone_url
    assert git("rev-parse", "--is-bare-repository", cwd=bare) == "true"
    work = tmp_path / "w"
    git("init", "-q", "-b", "main", str(work))
    sha = commit(work, {"a.txt": "a"})
    git("push", "-q", repo.clone_url, "main", cwd=work)
    assert git("rev-parse", "main", cwd=bare) == sha
    with pytest.raises(github.GithubException) as info:
        pygh.get_user().create_repo("newrepo")
    assert info.value.status == 422
    assert info.value.data["errors"][0]["message"] == "name already exists on this account"
    assert pygh.get_repo("clone-bot/newrepo").id == repo.id


def test_create_org_repo_and_unknown_org(gh, pygh, api, tmp_path):
    gh.add_org("acme")
    repo = pygh.get_organization("acme").create_repo("tool", auto_init=True)
    assert repo.full_name == "acme/tool" and repo.owner.login == "acme"
    assert git("log", "--format=%s", "main", cwd=tmp_path / "gh" / "acme" / "tool.git") == "Initial commit"
    with pytest.raises(github.UnknownObjectException):
        pygh.get_organization("ghost")
    answer = api.post("/orgs/ghost/repos", json={"name": "x"})
    assert answer.status_code == 404 and answer.json()["message"] == "Not Found"


# ------------------------------------------------------------------------------------------- faults
def test_injected_500_burst(gh, api, tmp_path):
    gh.add_repo("acme/widget")
    gh.inject(r"/repos/acme/widget$", 500, times=2)
    assert [api.get("/repos/acme/widget").status_code for _ in range(3)] == [500, 500, 200]
    gh.inject(r"/repos/acme/widget$", 502, times=2, method="GET")
    retrying = github.Github(base_url=gh.url, auth=github.Auth.Token(TOKEN), seconds_between_requests=0,
                             retry=github.GithubRetry(total=3, backoff_factor=0))
    assert retrying.get_repo("acme/widget").name == "widget"
    assert gh.count("GET", r"/repos/acme/widget$") == 6


def test_injected_rate_limit_answers(gh, api):
    reset = gh.rate_limit_exhausted(reset_in_seconds=30, times=1)
    limited = api.get("/user")
    assert limited.status_code == 403 and limited.json()["message"].startswith("API rate limit exceeded")
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.headers["X-RateLimit-Reset"] == str(reset)
    assert api.get("/user").status_code == 200
    gh.inject(r"^/user$", 429, headers={"Retry-After": "7"})
    secondary = api.get("/user")
    assert secondary.status_code == 429 and secondary.headers["Retry-After"] == "7"
    assert int(secondary.headers["X-RateLimit-Remaining"]) > 0


def test_budget_runs_out(tmp_path):
    with FakeGitHub(token=TOKEN, repos_root=tmp_path, rate_limit=3) as small:
        client = httpx.Client(base_url=small.url, headers={"Authorization": f"token {TOKEN}"})
        remaining = [client.get("/user").headers["X-RateLimit-Remaining"] for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        exhausted = client.get("/user")
        assert exhausted.status_code == 403 and exhausted.json()["message"].startswith("API rate limit")
        small.reset_rate_limit()
        assert small.rate_limit_remaining == 3 and client.get("/user").status_code == 200
        client.close()


def test_network_drop(gh, api):
    gh.network_drop(r"^/user$", times=1)
    with pytest.raises(httpx.TransportError):
        api.get("/user")
    assert api.get("/user").status_code == 200
    assert gh.requests[0].status is None


# -------------------------------------------------------------------------------------------- pulls
def test_pull_request_create_and_fast_forward_merge(gh, api, pygh, pushed):
    bare, work, base_sha = pushed
    gh.add_repo("acme/real", bare_path=bare)
    git("checkout", "-q", "-b", "clone/fix", cwd=work)
    head_sha = commit(work, {"fix.txt": "fixed"})
    git("push", "-q", "origin", "clone/fix", cwd=work)
    repo = pygh.get_repo("acme/real")
    pull = repo.create_pull(title="Fix", body="details", head="clone/fix", base="main")
    assert (pull.number, pull.state, pull.head.sha, pull.base.ref) == (1, "open", head_sha, "main")
    assert pull.mergeable is True and pull.html_url.endswith("/acme/real/pull/1")
    listed = api.get("/repos/acme/real/pulls", params={"head": "acme:clone/fix", "state": "open"}).json()
    assert [p["number"] for p in listed] == [1]
    duplicate = api.post("/repos/acme/real/pulls", json={"title": "x", "head": "clone/fix", "base": "main"})
    assert duplicate.status_code == 422
    status = pull.merge()
    assert status.merged and status.sha == head_sha
    assert git("rev-parse", "main", cwd=bare) == head_sha
    assert api.get("/repos/acme/real/pulls/1").json()["state"] == "closed"
    assert api.get("/repos/acme/real/pulls", params={"head": "acme:clone/fix"}).json() == []


def test_merge_refused_when_not_fast_forward(gh, api, pushed):
    bare, work, base_sha = pushed
    gh.add_repo("acme/real", bare_path=bare)
    git("checkout", "-q", "-b", "topic", cwd=work)
    commit(work, {"t.txt": "t"})
    git("push", "-q", "origin", "topic", cwd=work)
    git("checkout", "-q", "main", cwd=work)
    commit(work, {"m.txt": "m"})
    git("push", "-q", "origin", "main", cwd=work)
    created = api.post("/repos/acme/real/pulls", json={"title": "t", "head": "topic", "base": "main"})
    assert created.status_code == 201 and created.json()["mergeable"] is False
    answer = api.put("/repos/acme/real/pulls/1/merge")
    assert answer.status_code == 405 and answer.json()["message"] == "Pull Request is not mergeable"
    same = api.post("/repos/acme/real/pulls", json={"title": "t", "head": "main", "base": "main"})
    assert same.status_code == 422


def test_pagination_link_header(gh, api, pygh):
    gh.add_repo("acme/widget", complete_after_polls=0)
    for n in range(5):
        runs(api, "acme/widget", head_sha=f"{n}" * 40)
    page = api.get("/repos/acme/widget/actions/runs", params={"per_page": 2, "page": 2})
    assert page.json()["total_count"] == 5 and len(page.json()["workflow_runs"]) == 2
    assert 'rel="next"' in page.headers["Link"] and 'rel="prev"' in page.headers["Link"]
    py_runs = pygh.get_repo("acme/widget").get_workflow_runs()
    assert py_runs.totalCount == 5 and len(list(py_runs)) == 5
