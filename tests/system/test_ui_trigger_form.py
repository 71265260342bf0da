"""The ``clone_fleet`` trigger form in a real browser, against a real ``airflow standalone``.

A new user's path under ``make up``: log in through the UI with the generated admin password, open
the trigger form, change nothing, press Trigger. The run must be created and its tasks must use the
worker's environment (TASKS_PER_REPO=7, CLONE_AGENT=command here), not values baked into the form.
Bad input in the form must show the schema's message and create no run. Playwright drives Debian's
Chromium (tests/browser.py); a screenshot of each form state is kept under the test's tmp dir.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from clone.config.params import OPTIONS
from tests.airflow_home import airflow
from tests.browser import chromium, launch, log_in, open_trigger_form  # noqa: F401 (chromium is a fixture)
from tests.conftest import agent_calls, write_plan
from tests.repos import log_subjects, make_remote_and_checkout
from tests.standalone import Api, free_port, standalone_env, stop, wait_for
from tests.standalone import launch as launch_airflow

pytestmark = pytest.mark.slow

DAG_ID = "clone_fleet"
WORKER_TASKS_PER_REPO = 7  # differs from the built-in 10, so the prompt shows which one applied
FINISHED = ("success", "failed")


def _token(api: Api, password: str) -> str:
    answer = api.client.post("/auth/token", json={"username": "admin", "password": password})
    assert answer.status_code in (200, 201), answer.text
    return answer.json()["access_token"]


def _runs(api: Api) -> list[dict]:
    answer = api.client.get(f"/api/v2/dags/{DAG_ID}/dagRuns", params={"order_by": "id"})
    assert answer.status_code == 200, answer.text
    return answer.json()["dag_runs"]


def _finished_run(api: Api, run_id: str):
    def check():
        answer = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
        run = answer.json() if answer is not None and answer.status_code == 200 else {}
        return run if run.get("state") in FINISHED else None
    return check


@pytest.mark.timeout(900)
def test_trigger_form_with_defaults_runs_on_the_workers_environment(tmp_path: Path, clone_env,
                                                                   chromium):  # noqa: F811
    checkout, remote = make_remote_and_checkout(tmp_path, "alpha")
    clone_env["repos_file"].write_text(f"repos:\n  - path: {checkout}\n")
    write_plan(clone_env["plan"], {"*": {"pass": [{"write": "from_agent.txt", "text": "done\n"}]}})
    home, port = tmp_path / "airflow", free_port()
    home.mkdir()
    env = standalone_env(home, Path(__file__).resolve().parents[2] / "dags", port, {
        "AIRFLOW__CORE__PARALLELISM": "2",
        "CLONE_SCHEDULE": "none",  # unpausing must not create a scheduled run
        "TASKS_PER_REPO": str(WORKER_TASKS_PER_REPO),
    })
    for args in (("db", "migrate"), ("pools", "set", "clone_agent", "2", "agent processes")):
        result = airflow(env, *args, timeout=180)
        assert result.returncode == 0, f"airflow {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    with sqlite3.connect(home / "airflow.db") as db:
        assert db.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    base = f"http://127.0.0.1:{port}"
    passwords = home / "simple_auth_manager_passwords.json.generated"

    standalone, log = launch_airflow(env, home)
    try:
        api = Api(port)
        wait_for("every component to report healthy", api.healthy, 120, standalone, log)
        wait_for("the generated admin password", passwords.is_file, 30, standalone, log)
        password = json.loads(passwords.read_text())["admin"]
        api.client.headers["Authorization"] = f"Bearer {_token(api, password)}"
        wait_for(f"{DAG_ID} to be parsed", lambda: api.has_dag(DAG_ID), 90, standalone, log)

        with sync_playwright() as playwright:
            browser, page = launch(playwright, chromium), None
            try:
                page = browser.new_context(viewport={"width": 1280, "height": 2200}).new_page()
                page.set_default_timeout(30_000)
                log_in(page, base, password)

                # Bad input: the API's schema message shows in the form, and no run is created.
                dialog, submit = open_trigger_form(page, base, DAG_ID)
                page.fill("#element_repos", "not a repo!")
                submit.click()
                expect(dialog.get_by_text("Invalid input for param repos")).to_be_visible()
                page.screenshot(path=str(tmp_path / "trigger_form_bad_input.png"))
                assert _runs(api) == []

                # Every default untouched: the Trigger button works and the run is created.
                dialog, submit = open_trigger_form(page, base, DAG_ID)
                assert page.input_value("#element_model") == "" and page.input_value("#element_repos") == ""
                expect(dialog.get_by_text("default: CLONE_AGENT when the task runs (unset: codex)")) \
                    .to_be_visible()
                page.screenshot(path=str(tmp_path / "trigger_form_defaults.png"))
                submit.click()
                runs = wait_for("the form's run to be created", lambda: _runs(api), 30, standalone, log)
            finally:
                if page is not None:
                    page.screenshot(path=str(tmp_path / "trigger_form_last.png"))  # what a failure looked like
                browser.close()

        assert len(runs) == 1 and runs[0]["run_type"] == "manual", runs
        conf = runs[0]["conf"]
        # Nothing from the DAG processor's environment was baked in: every option is left to the worker.
        assert {o.name: conf.get(o.name) for o in OPTIONS} == {o.name: None for o in OPTIONS}, conf
        assert conf.get("dry_run") is False and not conf.get("repos"), conf
        run = wait_for("the form's run to finish", _finished_run(api, runs[0]["dag_run_id"]), 300,
                       standalone, log)

        # REST: bad conf is refused with the schema message; explicit values still win over the environment.
        for bad, message in (({"tasks_per_repo": 0}, "minimum"), ({"autofix": "yes"}, "is not one of")):
            answer = api.client.post(f"/api/v2/dags/{DAG_ID}/dagRuns",
                                     json={"logical_date": None, "conf": bad})
            assert answer.status_code == 400 and message in answer.text, (bad, answer.status_code,
                                                                          answer.text)
        answer = api.client.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={
            "logical_date": None, "conf": {"tasks_per_repo": 2, "dry_run": True, "repos": ["alpha"]}})
        assert answer.status_code == 200, answer.text
        explicit = wait_for("the REST run to finish", _finished_run(api, answer.json()["dag_run_id"]), 300,
                            standalone, log)
    finally:
        stop(standalone, home)

    assert run["state"] == "success", (run, log.read_text(errors="replace")[-4000:])
    assert explicit["state"] == "success", explicit
    calls = agent_calls(clone_env["agent_log"])
    assert [c["repo"] for c in calls] == ["alpha", "alpha"], calls
    # CLONE_AGENT=command and TASKS_PER_REPO=7 came from the worker's environment ...
    assert f"at most {WORKER_TASKS_PER_REPO} backlog item(s) (TASKS_PER_REPO)" in calls[0]["prompt"]
    # ... and the form's run pushed (dry_run false, CLONE_PUSH_MODE unset = direct); the REST run did not.
    assert log_subjects(remote)[0] != "initial" and len(log_subjects(remote)) == 2, log_subjects(remote)
    assert "at most 2 backlog item(s) (TASKS_PER_REPO)" in calls[1]["prompt"]
    shots = [tmp_path / "trigger_form_bad_input.png", tmp_path / "trigger_form_defaults.png"]
    assert all(p.stat().st_size > 10_000 for p in shots), shots
