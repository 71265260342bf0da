"""README, "Read-only bundles": where the DAG bundle (dags folder, repos.yaml, ideas.yaml) cannot be written,
a discovery run keeps what it found in the Variable ``clone.fleet.discovered``, works on it, says so in the
run note ("KEPT IN VARIABLES: ..."), leaves the files as they were; an ideas run takes an idea to ACTIVE with
its status in ``clone.ideas.<id>`` and the new repo in ``clone.fleet.enrolled.<name>`` (against the local
GitHub API fake); and ``include/scripts/export_state.py`` gives the entries back as repos.yaml and ideas.yaml
fragments (never replacing a file without ``--overwrite``).

A real Airflow started as ``make up`` starts it (tests/standalone.py); the run note is set through the
connection ``clone_airflow_api`` that the supervisor defines, not a password file. The bundle is made
read-only with chmod (a folder and files with no write bit count as read-only, even for root).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.airflow_home import ROOT, airflow
from tests.conftest import write_plan
from tests.fakes.github_api import FakeGitHub
from tests.workflow.test_e2e_ideas import PLAN, TOKEN
from tests.dag_runs import trigger, unpause, wait_finished
from tests.repos import make_remote_and_checkout
from tests.standalone import Api, free_port, launch, log_in_as_admin, standalone_env, stop, wait_for

pytestmark = pytest.mark.slow

DAG_ID = "clone_fleet"
IDEAS_DAG = "clone_ideas"
IDEAS = "ideas:\n  - id: notes   # mine\n    title: Notes CLI\n    repo_name: notes-cli\n"
EXPORT = ROOT / "include" / "scripts" / "export_state.py"


def read_only(folder: Path) -> None:
    for path in [*folder.rglob("*"), folder]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def writable(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_a_read_only_bundle_keeps_discovery_in_variables_and_the_note_says_so(tmp_path: Path, clone_env):
    found, _ = make_remote_and_checkout(tmp_path, "found")  # under CLONE_CODE_ROOT, not in repos.yaml
    listed, _ = make_remote_and_checkout(tmp_path, "listed")
    bundle = tmp_path / "bundle"
    (bundle / "dags").mkdir(parents=True)
    for dag_id in (DAG_ID, IDEAS_DAG):
        shutil.copy(ROOT / "dags" / f"{dag_id}.py", bundle / "dags" / f"{dag_id}.py")
    write_plan(clone_env["plan"], PLAN)
    repos_text = f"repos:\n  - path: {listed}   # mine\n    enabled: false\n"
    (bundle / "repos.yaml").write_text(repos_text)
    (bundle / "ideas.yaml").write_text(IDEAS)
    home = tmp_path / "airflow"
    home.mkdir()
    port = free_port()
    gh = FakeGitHub(token=TOKEN, repos_root=tmp_path / "github").__enter__()
    env = standalone_env(home, bundle / "dags", port, {
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps({"conn_type": "github", "host": gh.url, "password": TOKEN})})
    env.update({k: v for k, v in os.environ.items() if k.startswith(("CLONE_", "SCRIPTED_"))})
    env.update({"CLONE_REPOS_FILE": str(bundle / "repos.yaml"), "CLONE_IDEAS_FILE": str(bundle / "ideas.yaml"),
                "CLONE_SCHEDULE": "none", "CLONE_IDEAS_SCHEDULE": "none"})
    for args in (("db", "migrate"), ("pools", "set", "clone_agent", "3", "x")):
        done = airflow(env, *args, timeout=180)
        assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    read_only(bundle)
    standalone, log = launch(env, home)
    try:
        api = Api(port)
        wait_for("every component to report healthy", api.healthy, 90, standalone, log)
        log_in_as_admin(api, home, standalone, log)
        wait_for(f"{DAG_ID} to be parsed", lambda: api.has_dag(DAG_ID), 90, standalone, log)
        unpause(api, DAG_ID)
        run_id = trigger(api, DAG_ID)
        run = wait_finished(api, DAG_ID, run_id, 300, standalone, log)
        note = api.client.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}").json().get("note")
        wait_for(f"{IDEAS_DAG} to be parsed", lambda: api.has_dag(IDEAS_DAG), 90, standalone, log)
        unpause(api, IDEAS_DAG)
        ideas_run = trigger(api, IDEAS_DAG)
        ideas_state = wait_finished(api, IDEAS_DAG, ideas_run, 300, standalone, log)["state"]
        ideas_note = api.client.get(f"/api/v2/dags/{IDEAS_DAG}/dagRuns/{quote(ideas_run, safe='')}"
                                    ).json().get("note")
    finally:
        stop(standalone, home)
        writable(bundle)
        gh.__exit__(None, None, None)
    summary_log = "\n".join(p.read_text(errors="replace") for p in
                            (home / "logs" / f"dag_id={DAG_ID}").rglob("task_id=summary/*") if p.is_file())
    assert note, f"no note on run {run_id} ({run['state']}); summary log:\n{summary_log[-3000:]}"
    assert "KEPT IN VARIABLES: clone.fleet.discovered" in note, note
    assert "| found |" in note, note  # the discovered checkout was worked on
    assert (bundle / "repos.yaml").read_text() == repos_text  # the file is as the user wrote it
    assert (bundle / "ideas.yaml").read_text() == IDEAS
    assert ideas_state == "success" and ideas_note, (ideas_state, ideas_note)
    assert "| notes | notes-cli | ACTIVE | clone-bot/notes-cli |" in ideas_note, ideas_note
    assert "KEPT IN VARIABLES: clone.fleet.discovered, clone.fleet.enrolled.notes-cli, clone.ideas.notes" \
        in ideas_note, ideas_note
    with sqlite3.connect(f"file:{home / 'airflow.db'}?mode=ro", uri=True) as db:
        keys = sorted(k for (k,) in db.execute("SELECT key FROM variable WHERE key LIKE 'clone.%'"))
    assert [k for k in keys if not k.startswith(("clone.stall.", "clone.tokens."))] == [
        "clone.fleet.discovered", "clone.fleet.enrolled.notes-cli", "clone.ideas.notes"], keys

    def export(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(EXPORT), *args], env=env, capture_output=True, text=True,
                              timeout=120)

    shown = export("--only", "repos")
    assert shown.returncode == 0, shown.stderr
    assert f"repos:\n  - path: {found}\n    name: found\n" in shown.stdout, shown.stdout
    assert (f"  - path: {clone_env['code'] / 'notes-cli'}\n    name: notes-cli\n    branch: main\n"
            "    github: clone-bot/notes-cli\n") in shown.stdout, shown.stdout
    assert str(listed) not in shown.stdout
    ideas = export("--only", "ideas")
    assert ideas.returncode == 0 and ideas.stderr == "", ideas.stderr
    assert "ideas:\n  - id: notes\n" in ideas.stdout and "    status: ACTIVE\n" in ideas.stdout, ideas.stdout
    assert "    github: clone-bot/notes-cli\n" in ideas.stdout and "activated_at:" in ideas.stdout
    target = tmp_path / "kept-repos.yaml"
    target.write_text("# mine\n")
    refused = export("--only", "repos", "--repos-out", str(target))
    assert refused.returncode != 0 and "pass --overwrite" in refused.stderr
    assert target.read_text() == "# mine\n"
    written = export("--repos-out", str(target), "--ideas-out", str(tmp_path / "kept-ideas.yaml"), "--overwrite")
    assert written.returncode == 0, written.stderr
    assert str(found) in target.read_text() and "status: ACTIVE" in (tmp_path / "kept-ideas.yaml").read_text()
