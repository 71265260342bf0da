"""The ``land`` task in gated mode on a real scheduler + triggerer (``make up``), against a protected main.

README, "Push modes" and "Incidents follow the push mode": the chain is agent_pass -> push -> ci_wait ->
autofix -> land; a green gated chain shows autofix skipped ("nothing to fix") and the landing as ``land``;
an incident of a gated pass that was blocked never goes to main: it stays in the workspace and is a line of
the run's note. The bare remote's ``update`` hook is the branch protection: a push to main is accepted only
when the new tip is already on a ``clone/*`` work branch (the land path), and every rejection is logged.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.airflow_home import ROOT, airflow
from tests.conftest import write_plan
from tests.fakes.github_api import FakeGitHub
from tests.repos import git, log_subjects, make_remote_and_checkout, show
from tests.standalone import Api, free_port, launch, log_in_as_admin, our_processes, standalone_env, stop, wait_for

pytestmark = pytest.mark.slow

DAG_ID = "clone_fleet"
TOKEN = "ghp_landGATEDprobe0123456789abcdefABCDEF"
MAKEFILE = "test:\n\t@test ! -f broken.flag || (echo 'FAILED: broken.flag present'; exit 1)\n"
HOOK = """#!/bin/sh
# Branch protection: main moves only to a commit already on a clone/* work branch (the land path).
if [ "$1" = refs/heads/main ] && [ -z "$(git for-each-ref --contains "$3" refs/heads/clone/)" ]; then
  echo "$1 $3" >> "$(dirname "$0")/../rejected.log"
  echo "main is protected: land through a work branch" >&2
  exit 1
fi
"""


def protect(bare: Path) -> Path:
    hook = bare / "hooks" / "update"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    return bare / "rejected.log"


@pytest.mark.timeout(1500)
def test_gated_chain_lands_as_land_and_a_blocked_pass_keeps_its_incident_off_main(tmp_path: Path, clone_env):
    app, app_remote = make_remote_and_checkout(tmp_path, "app", {"Makefile": MAKEFILE})
    red, red_remote = make_remote_and_checkout(tmp_path, "red", {"Makefile": MAKEFILE})
    rejected = {name: protect(bare) for name, bare in (("app", app_remote), ("red", red_remote))}
    clone_env["repos_file"].write_text(f"repos:\n  - path: {app}\n    github: acme/app\n    push_mode: gated\n"
                                       f"  - path: {red}\n    github: acme/red\n    push_mode: gated\n")
    write_plan(clone_env["plan"], {"app": {"pass": [{"write": "feature.txt", "text": "f\n"}]},
                                   "red": {"pass": [{"write": "broken.flag", "text": "1"}],
                                           "autofix": [{"print": "not fixing it"}]}})
    home, dags = tmp_path / "airflow", tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    shutil.copy(ROOT / "dags" / f"{DAG_ID}.py", dags / f"{DAG_ID}.py")
    port = free_port()
    with FakeGitHub(token=TOKEN) as gh:
        gh.add_repo("acme/app", bare_path=app_remote, complete_after_polls=2)
        gh.add_repo("acme/red", bare_path=red_remote)
        env = standalone_env(home, dags, port, {
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps({"conn_type": "github", "host": gh.url, "password": TOKEN}),
        })
        env.update({k: v for k, v in os.environ.items() if k.startswith(("CLONE_", "SCRIPTED_"))})
        env.update({"CLONE_SCHEDULE": "none", "CLONE_CI_POLL_SECONDS": "1", "CLONE_CI_TIMEOUT_MINUTES": "3",
                    "CLONE_CI_START_GRACE_SECONDS": "60", "AIRFLOW_VAR_CLONE_PAUSED": "false",
                    "CLONE_VERIFY_POLICY": "block"})
        for args in (("db", "migrate"), ("pools", "set", "clone_agent", "3", "x")):
            done = airflow(env, *args, timeout=180)
            assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        started = time.monotonic()
        standalone, log = launch(env, home)
        try:
            api = Api(port)
            client = api.client
            wait_for("every component to report healthy", api.healthy, 300, standalone, log)
            log_in_as_admin(api, home, standalone, log)
            wait_for(f"{DAG_ID} to be parsed", lambda: api.has_dag(DAG_ID), 180, standalone, log)
            assert client.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False}).status_code == 200
            made = client.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": dt.datetime.now(dt.timezone.utc).isoformat(), "conf": {}})
            assert made.status_code == 200, made.text
            path = f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(made.json()['dag_run_id'], safe='')}"

            def finished() -> dict | None:
                answer = api.get(path)
                body = answer.json() if answer is not None and answer.status_code == 200 else {}
                return body if body.get("state") in ("success", "failed") else None

            run = wait_for("the run to finish", finished, 600, standalone, log, interval=1)
            took = time.monotonic() - started
            instances = client.get(f"{path}/taskInstances?limit=100").json()["task_instances"]
        finally:
            leftovers = stop(standalone, home)
        assert gh.server_errors == []

    labels = {(ti["task_id"], ti.get("rendered_map_index")): ti["state"] for ti in instances if ti["map_index"] >= 0}
    note = run.get("note") or ""
    print(f"gated land e2e: {took:.1f}s; run {run['state']}; states {sorted(labels.items())}\nnote:\n{note}")
    assert leftovers == [] and our_processes(home) == []

    # app: green gated work lands through `land`; autofix says it had nothing to fix.
    assert labels[("repo.autofix", "app")] == "skipped" and labels[("repo.land", "app")] == "success", labels
    assert log_subjects(app_remote)[0] == "clone: maintenance pass on app"
    assert show(app_remote, "main", "feature.txt") == "f\n"
    assert git(app_remote, "for-each-ref", "--format=%(refname)", "refs/heads/") == "refs/heads/main"
    assert [line for line in note.splitlines() if line.startswith("| app |")][0].endswith("| ok |"), note

    # red: blocked pass; its incident never went to main, not even as an attempt; the note says where it is.
    assert labels[("repo.agent_pass", "red")] == "failed", labels
    assert log_subjects(red_remote) == ["initial"]
    assert not rejected["red"].exists() and not rejected["app"].exists()
    workspace = clone_env["workspace"] / "repos" / "red"
    kept = git(workspace, "for-each-ref", "--format=%(refname)", "refs/clone/incidents/").split()
    assert len(kept) == 1 and "verification-red" in git(workspace, "show", f"{kept[0]}:INCIDENTS.md")
    line = [line for line in note.splitlines() if line.startswith("INCIDENT red:")]
    assert line and "verification-red" in line[0] and f"at {kept[0]}" in line[0], note
    assert run["state"] == "failed"  # red's pass failed: the run says so
