"""Scoped push credentials on a real scheduler (the ``make up`` supervisor): a ``url:`` repo served over
smart HTTP by real ``git http-backend`` behind Basic auth, the ``github_default`` connection in GitHub App mode
against the local GitHub API double. The pass's tasks must get an installation token (RS256 JWT), clone, fetch
and push with it through the pipe-fed credential helper, and CI must be watched with it; while the push is
held by a pre-receive hook, no process's argv or environment (but this test's, which runs the fakes) and no
file under AIRFLOW_HOME (logs, DB), the workspace or TMPDIR holds any installation token. The same for a
``deploy_key:`` over a real sshd (its key stored in the metadata DB, which that scan leaves out)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.airflow_home import ROOT, airflow
from tests.conftest import write_plan
from tests.dag_runs import task_instances, trigger, unpause, wait_finished
from tests.fakes.git_http import GitHttpServer
from tests.fakes.github_api import FakeGitHub
from tests.repos import git, log_subjects, make_remote_and_checkout, show
from tests.standalone import Api, free_port, launch, log_in_as_admin, our_processes, standalone_env, stop, wait_for
from tests.util.git_auth_support import HeldPush, Sshd, agents, ed25519_openssh, rsa_pem

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
DAG_ID = "clone_fleet"


def test_app_token_pushes_through_the_pipe_on_a_real_scheduler(tmp_path: Path, clone_env):
    bare = make_remote_and_checkout(tmp_path, "widget")[1]
    git(bare, "config", "http.receivepack", "true")
    shutil.rmtree(tmp_path / "code")
    (tmp_path / "code").mkdir()
    write_plan(clone_env["plan"], {"widget": {"pass": [{"write": "widget.txt", "text": "improved\n"}]}})
    private, public = rsa_pem()
    home, dags = tmp_path / "airflow", tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    shutil.copy(ROOT / "dags" / f"{DAG_ID}.py", dags / f"{DAG_ID}.py")
    port = free_port()
    with FakeGitHub(token="ghp_never_handed_out_0123456789abcdef") as gh:
        gh.enable_app(9191, public, 31337)
        gh.add_repo("acme/widget", bare_path=bare, complete_after_polls=2)
        held = HeldPush(bare, tmp_path / "marks", lambda: [t.encode() for t in gh.app_tokens_issued],
                        [home, clone_env["workspace"], tmp_path / "tmpdir"], wait=600)
        (tmp_path / "tmpdir").mkdir()
        with GitHttpServer(tmp_path / "remotes", lambda: gh.app_tokens_issued) as server:
            clone_env["repos_file"].write_text(f"repos:\n  - url: {server.url}/widget.git\n    github: acme/widget\n")
            env = standalone_env(home, dags, port, {"AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps({
                "conn_type": "github", "host": gh.url,
                "extra": {"app_id": 9191, "installation_id": 31337, "private_key": private}})})
            env.update({k: v for k, v in os.environ.items() if k.startswith(("CLONE_", "SCRIPTED_"))})
            env.update({"CLONE_SCHEDULE": "none", "CLONE_CI_POLL_SECONDS": "1", "CLONE_CI_TIMEOUT_MINUTES": "3",
                        "CLONE_CI_START_GRACE_SECONDS": "60", "CLONE_DISCOVER_LOCAL": "0",
                        "AIRFLOW_VAR_CLONE_PAUSED": "false", "TMPDIR": str(tmp_path / "tmpdir")})
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
            held.join()
            denied = sum(1 for _, _, ok in server.log if not ok)
            served = len(server.log) - denied
        assert gh.server_errors == []
        issued, rejected = len(gh.app_tokens_issued), gh.app_jwts_rejected
        ci_polls = gh.count("GET", r"/actions/runs")
    states = sorted((ti["task_id"], ti.get("rendered_map_index"), ti["state"]) for ti in instances)
    story = (f"run {run.get('state')} in {took:.0f}s; tokens issued {issued}, git requests {served} served / "
             f"{denied} challenged, CI polls {ci_polls}, leaks {held.hits}, git processes mid-push "
             f"{held.git_processes}; states: {states}\nnote:\n{run.get('note')}")
    print(f"scoped push credentials on a real scheduler: {story}")
    assert leftovers == [] and our_processes(home) == []
    assert run["state"] == "success", story
    assert show(bare, "main", "widget.txt") == "improved\n", story
    assert log_subjects(bare)[:2] == ["clone: maintenance pass on widget", "initial"]
    assert held.hits == [] and held.searched >= 1 and held.git_processes >= 1, story
    assert issued >= 1 and rejected == 0 and denied >= 1 and ci_polls >= 1, story


def _run_fleet(home: Path, dags: Path, port: int, env_extra: dict[str, str],
               *setup: tuple[str, ...]) -> tuple[dict, list, float, list]:
    env = standalone_env(home, dags, port, env_extra)
    env.update({k: v for k, v in os.environ.items() if k.startswith(("CLONE_", "SCRIPTED_"))})
    env.update({"CLONE_SCHEDULE": "none", "CLONE_DISCOVER_LOCAL": "0", "AIRFLOW_VAR_CLONE_PAUSED": "false"})
    for args in (("db", "migrate"), ("pools", "set", "clone_agent", "3", "x"), *setup):
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
    return run, instances, took, leftovers


def test_deploy_key_pushes_through_a_private_agent_on_a_real_scheduler(tmp_path: Path, clone_env):
    from tests.toolchains import ensure_program

    bare = make_remote_and_checkout(tmp_path, "widget")[1]
    shutil.rmtree(tmp_path / "code")
    (tmp_path / "code").mkdir()
    write_plan(clone_env["plan"], {"widget": {"pass": [{"write": "widget.txt", "text": "over ssh\n"}]}})
    private, public = ed25519_openssh()
    server = Sshd(tmp_path / "sshd", ensure_program("sshd", "openssh-server"), public)
    home, dags = tmp_path / "airflow", tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    (tmp_path / "tmpdir").mkdir()
    shutil.copy(ROOT / "dags" / f"{DAG_ID}.py", dags / f"{DAG_ID}.py")
    secret = [line.encode() for line in private.splitlines()[1:4]]
    # Airflow's metadata DB is where the connection is stored (as a secrets backend would hold it): not scanned
    held = HeldPush(bare, tmp_path / "marks", secret, [home, clone_env["workspace"], tmp_path / "tmpdir"],
                    wait=600, skip_files=("airflow.db", "airflow.db-wal", "airflow.db-shm"))
    before = agents()
    try:
        clone_env["repos_file"].write_text(f"repos:\n  - url: ssh://root@127.0.0.1:{server.port}{bare}\n"
                                           "    deploy_key: widget_deploy\n")
        # the key lives in the metadata DB (as from a secrets backend), in no process's environment: the tasks
        # read it through the API server; the CLI that stores it has exited before any push
        run, instances, took, leftovers = _run_fleet(home, dags, free_port(), {
            "CLONE_SSH_KNOWN_HOSTS": str(server.known_hosts), "TMPDIR": str(tmp_path / "tmpdir")},
            ("connections", "add", "widget_deploy", "--conn-type", "generic",
             "--conn-extra", json.dumps({"private_key": private})))
        held.join()
    finally:
        server.close()
    states = sorted((ti["task_id"], ti.get("rendered_map_index"), ti["state"]) for ti in instances)
    story = (f"run {run.get('state')} in {took:.0f}s; leaks {held.hits}, git processes mid-push "
             f"{held.git_processes}, agents mid-push {len(held.agents_mid_push - before)}; states: {states}\n"
             f"note:\n{run.get('note')}")
    print(f"deploy key on a real scheduler: {story}")
    assert leftovers == [] and our_processes(home) == []
    assert run["state"] == "success", story
    assert show(bare, "main", "widget.txt") == "over ssh\n", story
    assert held.hits == [] and held.git_processes >= 1 and held.agents_mid_push - before, story
    assert agents() == before, story  # every agent the tasks started is gone
