"""The "Clone fleet" page in a real browser, against a real Airflow started as ``make up`` starts it.

One real ``clone_fleet`` run over five repos (scripted agent, real git, the local GitHub API):
alpha green, beta red then autofixed, delta's agent crashes, eps stalled, gamma disabled; then a
real ``clone_ideas`` run (one idea goes ACTIVE, one is BLOCKED). The page must show every row, state
and link as recorded, the charts must hold the recorded figures, the run note must start with its
headline, and the notifications must reach a local SMTP server and a local webhook. Screenshots go to
``$TEST_ARTIFACTS/fleet_page`` (default: the test's tmp dir).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.airflow_home import airflow
from tests.browser import chromium, launch, log_in  # noqa: F401 (chromium is a fixture)
from tests.conftest import write_plan
from tests.fakes.github_api import FakeGitHub
from tests.fakes.notify_sinks import SmtpSink, WebhookSink
from tests.repos import git, make_remote_and_checkout
from tests.standalone import Api, free_port, log_in_as_admin, standalone_env, stop, wait_for
from tests.standalone import launch as launch_airflow
from tests.workflow.test_e2e_fleet import ci_from_tree

pytestmark = pytest.mark.slow
TOKEN = "ghp_pageSECRETtoken0123456789abcdefABCDEF"
ROOT = Path(__file__).resolve().parents[2]


def _finished(api: Api, dag_id: str, run_id: str):
    def check():
        answer = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        run = answer.json() if answer is not None and answer.status_code == 200 else {}
        return run if run.get("state") in ("success", "failed") else None
    return check


def _trigger(api: Api, dag_id: str) -> str:
    assert api.client.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).status_code == 200
    answer = api.client.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None})
    assert answer.status_code == 200, answer.text
    return answer.json()["dag_run_id"]


def _fleet(tmp_path: Path, clone_env: dict, gh: FakeGitHub) -> dict[str, Path]:
    remotes = {}
    lines = ["repos:"]
    for name in ("alpha", "beta", "delta", "eps", "gamma"):
        checkout, remote = make_remote_and_checkout(tmp_path, name, {"README.md": f"# {name}\n"})
        gh.add_repo(f"acme/{name}", bare_path=remote, ci=ci_from_tree(remote), start_after_polls=1,
                    complete_after_polls=2)
        remotes[name] = remote
        lines.append(f"  - path: {checkout}\n    github: acme/{name}" + ("\n    enabled: false" if name == "gamma" else ""))
    clone_env["repos_file"].write_text("\n".join(lines) + "\n")
    write_plan(clone_env["plan"], {
        "alpha": {"pass": [{"write": "alpha.txt", "text": "improved\n"}]},
        "beta": {"pass": [{"write": "broken.txt", "text": "oops\n"}], "autofix": [{"delete": "broken.txt"}]},
        "delta": {"pass": [{"print": "agent crashed"}, {"exit": 3}]},
        "eps": {"pass": [{"write": "eps.txt", "text": "must not happen\n"}]},
        "*": {"bootstrap": [{"write": "notes.py", "text": "print('notes')\n"}, {"print": "Outcome: done"}]},
    })
    clone_env["ideas_file"].write_text("ideas:\n  - id: notes\n    title: Notes CLI\n    repo_name: notes-cli\n"
                                       "  - id: parent\n    title: Escape upwards\n    repo_name: ../x\n")
    return remotes


def _artifacts(tmp_path: Path) -> Path:
    root = Path(os.environ.get("TEST_ARTIFACTS") or tmp_path)
    path = root / "fleet_page"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.timeout(1500)
def test_fleet_page_shows_what_the_runs_recorded(tmp_path: Path, clone_env, chromium):  # noqa: F811
    shots = _artifacts(tmp_path)
    home, port = tmp_path / "airflow", free_port()
    home.mkdir()
    with FakeGitHub(token=TOKEN, repos_root=tmp_path / "github") as gh, SmtpSink() as smtp, WebhookSink() as hook:
        remotes = _fleet(tmp_path, clone_env, gh)
        env = standalone_env(home, ROOT / "dags", port, {
            "AIRFLOW__CORE__PARALLELISM": "3", "CLONE_SCHEDULE": "none", "CLONE_IDEAS_SCHEDULE": "none",
            "AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps({"conn_type": "github", "host": gh.url, "password": TOKEN}),
            "GITHUB_TOKEN": TOKEN, "CLONE_CI_POLL_SECONDS": "0.2", "CLONE_CI_START_GRACE_SECONDS": "60",
            "CLONE_CI_TIMEOUT_MINUTES": "3", "CLONE_STALL_PASSES": "3",
            "AIRFLOW_CONN_CLONE_SMTP": json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": smtp.port,
                                                   "extra": {"disable_ssl": True, "disable_tls": True}}),
            "AIRFLOW_CONN_CLONE_HOOK": json.dumps({"conn_type": "slackwebhook", "password": hook.url}),
            "CLONE_NOTIFY_SMTP_CONN_ID": "clone_smtp", "CLONE_NOTIFY_TO": "ops@example.test",
            "CLONE_NOTIFY_SLACK_CONN_ID": "clone_hook",
            # Seen with a load average of 20 on 2 CPUs: a task's first execution-API call timed out at the
            # default and the task failed before it started. A slow machine is not what this test is about.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
        })
        # eps: its last passes changed nothing and its branch has not moved since: the stall rule skips it.
        # Inside a task the stall counter is the Variable clone.stall.<repo> (README: Shared state).
        eps_stall = json.dumps({"no_change_passes": 3, "head": git(remotes["eps"], "rev-parse", "main")})
        for args in (("db", "migrate"), ("pools", "set", "clone_agent", "2", "agent processes"),
                     ("variables", "set", "clone.stall.eps", eps_stall)):
            result = airflow(env, *args, timeout=180)
            assert result.returncode == 0, f"airflow {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        base = f"http://127.0.0.1:{port}"
        standalone, log = launch_airflow(env, home)
        try:
            api = Api(port)
            wait_for("every component to report healthy", api.healthy, 180, standalone, log)
            password = log_in_as_admin(api, home, standalone, log)
            for dag_id in ("clone_fleet", "clone_ideas"):
                wait_for(f"{dag_id} to be parsed", lambda d=dag_id: api.has_dag(d), 120, standalone, log)
            # Not logged in: the data is refused and the page sends the browser to Airflow's login.
            assert httpx.get(f"{base}/clone/api/fleet").status_code == 401
            assert httpx.get(f"{base}/clone/", follow_redirects=False).status_code in (302, 307)

            run_id = _trigger(api, "clone_fleet")
            run = wait_for("the fleet run to finish", _finished(api, "clone_fleet", run_id), 900, standalone, log)
            ideas_run = _trigger(api, "clone_ideas")
            wait_for("the ideas run to finish", _finished(api, "clone_ideas", ideas_run), 600, standalone, log)
            assert run["state"] == "failed", run  # delta's chain failed, so the run did
            note = api.client.get(f"/api/v2/dags/clone_fleet/dagRuns/{run_id}").json()["note"]
            assert note.splitlines()[0].startswith("4 repos: 1 pushed, 1 autofixed, 1 failed, 1 skipped; "), note
            recorded = api.client.get(f"/api/v2/dags/clone_fleet/dagRuns/{run_id}/taskInstances/summary/xcomEntries/"
                                      "fleet_record").json()["value"]
            recorded = json.loads(recorded) if isinstance(recorded, str) else recorded
            data = api.client.get("/clone/api/fleet").json()

            with sync_playwright() as playwright:
                browser, page = launch(playwright, chromium), None
                try:
                    page = browser.new_context(viewport={"width": 1400, "height": 1800}).new_page()
                    page.set_default_timeout(30_000)
                    log_in(page, base, password)
                    page.goto(f"{base}/plugin/clone-fleet")  # the nav entry: the page inside Airflow's frame
                    frame = page.frame_locator("iframe").first
                    expect(frame.locator("#fleet tr[data-repo]")).to_have_count(5, timeout=60_000)
                    page.screenshot(path=str(shots / "fleet_in_airflow.png"), full_page=True)
                    page.goto(f"{base}/clone/")
                    rows = {r.get_attribute("data-repo"): r for r in page.locator("#fleet tr[data-repo]").all()}
                    states = {name: row.get_attribute("data-state") for name, row in rows.items()}
                    assert states == {"alpha": "active", "beta": "active", "delta": "failing", "eps": "stalled",
                                      "gamma": "disabled"}, states
                    cell = lambda repo, col: rows[repo].locator(f"td[data-col={col}]")  # noqa: E731
                    assert cell("alpha", "outcome").inner_text() == "pushed"
                    assert cell("beta", "outcome").inner_text() == "autofixed" and cell("beta", "autofix").inner_text() == "1"
                    assert cell("beta", "commits").inner_text().startswith("2")
                    assert "stalled: the last 3 passes changed nothing" in cell("eps", "state").inner_text()
                    assert "enabled: false" in cell("gamma", "state").inner_text()
                    assert cell("delta", "incidents").inner_text() == "1"
                    for name in ("alpha", "beta"):  # the CI link is the run GitHub reported for the pushed commit
                        head = git(remotes[name], "rev-parse", "main")
                        assert cell(name, "ci").locator("a").get_attribute("href") == gh.run_for(f"acme/{name}", head)["html_url"]
                        assert cell(name, "ci").inner_text() == "success"
                    run_link = cell("delta", "links").get_by_text("run").get_attribute("href")
                    assert run_link == f"/dags/clone_fleet/runs/{quote(run_id, safe='')}"
                    log_href = cell("delta", "links").get_by_text("log").get_attribute("href")
                    assert log_href == f"{run_link}/tasks/repo.agent_pass/mapped/2"
                    # Charts: today's bars hold what the run recorded.
                    today = data["series"][-1]["day"]
                    for outcome in ("pushed", "autofixed", "failed", "skipped"):
                        bar = page.locator(f'#chart-passes rect[data-day="{today}"][data-series="{outcome}"]')
                        want = sum(1 for e in recorded["repos"] if e["outcome"] == outcome)
                        assert bar.get_attribute("data-value") == str(want) == "1", outcome
                    commits = sum(e["commits"] for e in recorded["repos"])
                    assert page.locator(f'#chart-commits rect[data-day="{today}"]').get_attribute("data-value") == str(commits) == "3"
                    assert page.locator(f'#chart-ci rect[data-day="{today}"][data-series="green"]').get_attribute("data-value") == "2"
                    ideas = {r.get_attribute("data-idea"): r.inner_text() for r in page.locator("#ideas tr[data-idea]").all()}
                    assert "ACTIVE" in ideas["notes"] and "notes-cli" in ideas["notes"], ideas
                    assert "BLOCKED" in ideas["parent"] and "triage" in ideas["parent"], ideas
                    page.screenshot(path=str(shots / "fleet.png"), full_page=True)
                    rows["beta"].locator("td").first.locator("a").click()
                    expect(page.locator("#history tr[data-run]")).to_have_count(1)
                    assert "autofixed" in page.locator("#history").inner_text()
                    page.screenshot(path=str(shots / "repo_beta.png"), full_page=True)
                    page.goto(f"{base}{run_link}")
                    expect(page.get_by_text(run_id).first).to_be_visible(timeout=60_000)  # the link lands on the run
                    page.goto(f"{base}{log_href}")  # and the log link on delta's failed pass
                    expect(page.get_by_text("exited with code 3").first).to_be_visible(timeout=60_000)
                    page.screenshot(path=str(shots / "delta_log.png"))
                finally:
                    if page is not None:
                        page.screenshot(path=str(shots / "last.png"))
                    browser.close()
        finally:
            stop(standalone, home)
        subjects, texts = smtp.subjects(), hook.texts()
    assert "[clone] chain failed: delta" in subjects and "[clone] stalled: eps" in subjects, subjects
    assert "[clone] idea blocked: parent" in subjects, subjects
    assert not any(s.endswith((": alpha", ": beta", ": gamma")) for s in subjects), subjects  # healthy: silent
    assert len(texts) == len(subjects), (texts, subjects)
    assert all((shots / n).stat().st_size > 10_000 for n in ("fleet.png", "repo_beta.png", "fleet_in_airflow.png"))
