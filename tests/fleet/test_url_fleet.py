"""A fleet with no local checkout, on a real scheduler (the ``make up`` supervisor): ``url:`` repos from
repos.yaml and repositories listed from a GitHub organisation (CLONE_DISCOVER_GITHUB; the local GitHub API
double, whose clone URLs are the bare remotes' file:// URLs), CLONE_DISCOVER_LOCAL=0.

acme holds: alpha (declared in repos.yaml as a ``url:`` entry), beta (listed; its first CI run fails and
the autofix repairs it), gamma (listed; repos.yaml says ``enabled: false`` for it), old (listed, not pushed
within CLONE_ACTIVE_DAYS), attic (archived) and copy (a fork). Only alpha and beta may change."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.airflow_home import ROOT, airflow
from tests.conftest import agent_calls, write_plan
from tests.dag_runs import task_instances, trigger, unpause, wait_finished
from tests.fakes.github_api import CIOutcome, FakeGitHub
from tests.repos import log_subjects, make_remote_and_checkout, show
from tests.standalone import Api, free_port, launch, log_in_as_admin, our_processes, standalone_env, stop, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
DAG_ID = "clone_fleet"
TOKEN = "ghp_urlFLEETprobe0123456789abcdefABCDEF"


def red_while_broken(bare: Path):
    def ci(sha: str, attempt: int) -> CIOutcome:
        return CIOutcome.failed(log="E   AssertionError: broken.txt must not exist") \
            if show(bare, sha, "broken.txt") is not None else CIOutcome()
    return ci


def test_url_repos_and_a_github_org_run_on_a_real_scheduler(tmp_path: Path, clone_env):
    remotes = {name: make_remote_and_checkout(tmp_path, name)[1]
               for name in ("alpha", "beta", "gamma", "old", "attic", "copy")}
    shutil.rmtree(tmp_path / "code")  # no checkout anywhere: only the remotes
    (tmp_path / "code").mkdir()
    clone_env["repos_file"].write_text(
        f"repos:\n  - url: {remotes['alpha'].as_uri()}\n    github: acme/alpha\n"
        f"  - url: {remotes['gamma'].as_uri()}\n    github: acme/gamma\n    enabled: false\n")
    write_plan(clone_env["plan"], {
        "alpha": {"pass": [{"write": "alpha.txt", "text": "improved\n"}]},
        "beta": {"pass": [{"write": "broken.txt", "text": "oops\n"}], "autofix": [{"delete": "broken.txt"}]},
        "*": {"pass": [{"write": "never.txt", "text": "must not happen\n"}]},
    })
    home, dags = tmp_path / "airflow", tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    shutil.copy(ROOT / "dags" / f"{DAG_ID}.py", dags / f"{DAG_ID}.py")
    port = free_port()
    now = dt.datetime.now(dt.timezone.utc)

    with FakeGitHub(token=TOKEN) as gh:
        gh.add_org("acme")
        for name, bare in remotes.items():
            gh.add_repo(f"acme/{name}", bare_path=bare, ci=red_while_broken(bare), complete_after_polls=2,
                        pushed_at=now - dt.timedelta(days=60 if name == "old" else 1),
                        archived=name == "attic", fork=name == "copy")
        env = standalone_env(home, dags, port, {
            "AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps({"conn_type": "github", "host": gh.url, "password": TOKEN}),
        })
        env.update({k: v for k, v in os.environ.items() if k.startswith(("CLONE_", "SCRIPTED_"))})
        env.update({"CLONE_SCHEDULE": "none", "CLONE_CI_POLL_SECONDS": "1", "CLONE_CI_TIMEOUT_MINUTES": "3",
                    "CLONE_CI_START_GRACE_SECONDS": "60", "CLONE_DISCOVER_LOCAL": "0",
                    "CLONE_DISCOVER_GITHUB": "acme", "AIRFLOW_VAR_CLONE_PAUSED": "false"})
        for args in (("db", "migrate"), ("pools", "set", "clone_agent", "3", "x")):
            done = airflow(env, *args, timeout=180)
            assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        standalone, log = launch(env, home)
        try:
            api = Api(port)
            wait_for("every component to report healthy", api.healthy, 300, standalone, log)
            log_in_as_admin(api, home, standalone, log)
            wait_for(f"{DAG_ID} to be parsed", lambda: api.has_dag(DAG_ID), 90, standalone, log)
            unpause(api, DAG_ID)
            started = time.monotonic()
            run_id = trigger(api, DAG_ID)
            run = wait_finished(api, DAG_ID, run_id, 400, standalone, log)
            took = time.monotonic() - started
            instances = task_instances(api, DAG_ID, run_id)
        finally:
            leftovers = stop(standalone, home)
        listing_requests = gh.count("GET", r"^/orgs/acme/repos$")
        assert gh.server_errors == []
    states = sorted((ti["task_id"], ti.get("rendered_map_index"), ti["state"]) for ti in instances)
    story = f"run {run.get('state')} in {took:.0f}s; note:\n{run.get('note')}\nstates: {states}"
    print(f"url fleet on a real scheduler: {story}")
    assert leftovers == [] and our_processes(home) == []
    assert run["state"] == "success", story
    assert {c["repo"] for c in agent_calls(clone_env["agent_log"])} == {"alpha", "beta"}, story
    assert log_subjects(remotes["alpha"])[:2] == ["clone: maintenance pass on alpha", "initial"]
    assert show(remotes["alpha"], "main", "alpha.txt") == "improved\n"
    assert log_subjects(remotes["beta"])[:3] == ["clone: fix CI failure on beta", "clone: maintenance pass on beta",
                                                 "initial"]
    assert show(remotes["beta"], "main", "broken.txt") is None
    for name in ("gamma", "old", "attic", "copy"):
        assert log_subjects(remotes[name]) == ["initial"], name
    assert listing_requests == 1
    assert sorted((tmp_path / "workspace" / "repos").iterdir()) == [tmp_path / "workspace" / "repos" / "alpha",
                                                                    tmp_path / "workspace" / "repos" / "beta"]
