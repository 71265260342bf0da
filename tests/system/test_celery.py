"""clone_fleet on a real Celery deployment (README, "Scale out"): PostgreSQL, Redis, scheduler, dag-processor,
triggerer, api-server and two ``airflow celery worker``s that share no disk (tests/celery_cluster.py).

The fleet is four ``url:`` repos (bare remotes behind file:// URLs, CI from the local GitHub API double); one
of them goes red and is autofixed. What must hold: task instances ran on both workers, and every chain works
wherever its tasks land.

Chains are stateless (README, "Scale out"): agent_pass puts its commit on ``refs/clone/pending/<run>/<repo>``
on the remote, and push, autofix and land fetch it into their own worker's cache clone (made when missing),
so a chain whose tasks land on different workers goes through; once pushed, no pending ref is left."""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.airflow_home import ROOT, airflow
from tests.celery_cluster import celery_env, postgres, redis, require_unshare, start_worker, stop_worker
from tests.conftest import agent_calls, write_plan
from tests.dag_runs import chains, task_instances, trigger, unpause, wait_finished
from tests.fakes.github_api import CIOutcome, FakeGitHub
from tests.repos import log_subjects, make_remote_and_checkout, show
from tests.standalone import Api, free_port, launch, log_in_as_admin, standalone_env, stop, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
DAG_ID = "clone_fleet"
TOKEN = "ghp_celeryPROBE0123456789abcdefABCDEFxyz"
REPOS = ("ant", "bee", "cat", "dog")
RED = "cat"
WORKERS = ("worker-a", "worker-b")


class Cluster:
    """What wait_for needs: ``poll()`` is not None once any component died."""

    def __init__(self, supervisor, workers):
        self.supervisor, self.workers = supervisor, workers

    def poll(self):
        for process in (self.supervisor, *(w.process for w in self.workers)):
            if process.poll() is not None:
                return process.returncode
        return None

    @property
    def returncode(self):
        return self.poll()


def ci_red_while_broken(bare: Path):
    def ci(sha: str, attempt: int) -> CIOutcome:
        return CIOutcome.failed(log="E   AssertionError: broken.txt must not exist") \
            if show(bare, sha, "broken.txt") is not None else CIOutcome()
    return ci


_EXECUTING = re.compile(r"Executing workload in Celery: .*?log_path='[^']*/run_id=(?P<run>[^/]+)/task_id=(?P<task>[^/]+)"
                        r"(?:/map_index=(?P<index>\d+))?/attempt=\d+\.log'")


def executions(workers, run_id: str) -> dict[tuple[str, int], list[str]]:
    """Per (task id, map index) of ``run_id``, the workers that executed its parts, in order, from their logs.

    A deferrable task (ci_wait, autofix) runs in parts: before its deferral and after each trigger event,
    each part on whichever worker Celery picks; the task instance's hostname names only one of them."""
    found: dict[tuple[str, int], list[tuple[str, str]]] = collections.defaultdict(list)
    for worker in workers:
        for line in worker.log.read_text(errors="replace").splitlines():
            match = _EXECUTING.search(line)
            if match and match["run"] == run_id:
                found[(match["task"], int(match["index"] or -1))].append((line[:32], worker.name))
    return {key: [name for _, name in sorted(parts)] for key, parts in found.items()}


def task_log(home: Path, run_id: str, task_id: str, index: int) -> str:
    folder = home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}"
    folder = folder / f"map_index={index}" if index >= 0 else folder  # an unmapped task has no map_index part
    return "\n".join(p.read_text(errors="replace") for p in sorted(folder.glob("attempt=*.log")))


def error_line(text: str) -> str:
    """The task's exception message (structured task log), else its first error line."""
    found = re.search(r'"exc_type":"([^"]+)","exc_value":"([^"]+)"', text)
    if found:
        return f"{found.group(1)}: {found.group(2)}"[:400]
    for line in text.splitlines():
        if '"level":"error"' in line or "[error" in line or "Error" in line:
            found = re.search(r'"event":"([^"]+)"', line)
            return (found.group(1) if found else line.strip())[:300]
    return "(no error line)"


def test_clone_fleet_on_celery_with_two_workers(tmp_path: Path, clone_env):
    private_disks = True  # the workers share no disk (a shared workspace was measured once: README, Scale out)
    require_unshare()
    remotes = {name: make_remote_and_checkout(tmp_path, name)[1] for name in REPOS}
    shutil.rmtree(tmp_path / "code")
    (tmp_path / "code").mkdir()
    clone_env["repos_file"].write_text("repos:\n" + "".join(
        f"  - url: {remotes[name].as_uri()}\n    github: acme/{name}\n" for name in REPOS))
    plan = {name: {"pass": [{"sleep": 2}, {"write": f"{name}.txt", "text": "improved\n"}]} for name in REPOS}
    plan[RED] = {"pass": [{"write": "broken.txt", "text": "oops\n"}], "autofix": [{"delete": "broken.txt"}]}
    write_plan(clone_env["plan"], plan)
    home, dags, workspaces = tmp_path / "airflow", tmp_path / "dags", tmp_path / "workspaces"
    for folder in (home, dags, workspaces):
        folder.mkdir()
    shutil.copy(ROOT / "dags" / f"{DAG_ID}.py", dags / f"{DAG_ID}.py")
    port = free_port()
    services = tmp_path / "services"
    services.mkdir()

    with postgres(services / "pg") as sql_url, redis(services) as broker_url, FakeGitHub(token=TOKEN) as gh:
        gh.add_org("acme")
        for name in REPOS:
            gh.add_repo(f"acme/{name}", bare_path=remotes[name], ci=ci_red_while_broken(remotes[name]),
                        complete_after_polls=2)
        env = standalone_env(home, dags, port, {
            "AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps({"conn_type": "github", "host": gh.url, "password": TOKEN}),
        })
        env.update({k: v for k, v in os.environ.items() if k.startswith(("CLONE_", "SCRIPTED_"))})
        # @daily so that past days can be backfilled (two concurrent runs below); the scheduler makes no
        # scheduled run of its own (use_job_schedule off), so every run here is one the test asked for.
        env.update({"CLONE_SCHEDULE": "@daily", "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                    "CLONE_CI_POLL_SECONDS": "1", "CLONE_CI_TIMEOUT_MINUTES": "5",
                    "CLONE_CI_START_GRACE_SECONDS": "60", "CLONE_DISCOVER_LOCAL": "0",
                    "AIRFLOW_VAR_CLONE_PAUSED": "false",
                    # Agents and checks run sandboxed inside each worker's private mount namespace, as in a pod.
                    "CLONE_SANDBOX": "required"})
        env = celery_env(env, sql_url, broker_url)
        for args in (("db", "migrate"), ("pools", "set", "clone_agent", "4", "x")):
            done = airflow(env, *args, timeout=600)
            assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        supervisor, log = launch(env, home)
        workers = [start_worker(env, name, workspaces, home, private=private_disks) for name in WORKERS]
        cluster = Cluster(supervisor, workers)
        try:
            api = Api(port)
            wait_for("every component to report healthy", api.healthy, 300, cluster, log)
            log_in_as_admin(api, home, cluster, log)
            wait_for(f"{DAG_ID} to be parsed", lambda: api.has_dag(DAG_ID), 120, cluster, log)
            unpause(api, DAG_ID)
            started = time.monotonic()
            run_id = trigger(api, DAG_ID)
            run = wait_finished(api, DAG_ID, run_id, 900, cluster, log)
            wall = time.monotonic() - started
            instances = task_instances(api, DAG_ID, run_id)
            lease_commits_before = {name: len(lease_history(remotes[name])) for name in REPOS}
            red_subjects = log_subjects(remotes[RED])[:2]
            # Two concurrent runs over the same four repos: a 2-day backfill with --max-active-runs 2 (a backfill
            # ignores the DAG's max_active_runs). Each pass sleeps so that they overlap; one pass per repo at a
            # time must hold across both runs and both workers.
            write_plan(clone_env["plan"], {name: {"pass": [{"sleep": 6}, {"append": f"{name}.txt",
                                                                          "text": "again\n"}]} for name in REPOS})
            today = dt.datetime.now(dt.timezone.utc).date()
            days = [today - dt.timedelta(days=3), today - dt.timedelta(days=2)]
            concurrent_started = time.monotonic()
            created = airflow(env, "backfill", "create", "--dag-id", DAG_ID, "--from-date", days[0].isoformat(),
                              "--to-date", days[1].isoformat(), "--max-active-runs", "2", timeout=300)
            assert created.returncode == 0, created.stdout[-3000:] + created.stderr[-3000:]
            wait_for("both backfill runs to finish", lambda: len(done := backfill_runs(api)) == 2 and all(
                r["state"] in ("success", "failed") for r in done), 900, cluster, log, interval=2)
            concurrent = backfill_runs(api)
            concurrent_wall = time.monotonic() - concurrent_started
            listed = api.client.get("/api/v2/variables", params={"limit": 200})
            assert listed.status_code == 200, listed.text
            variables = {v["key"]: v["value"] for v in listed.json()["variables"]}
        finally:
            for worker in workers:
                stop_worker(worker)
            stop(supervisor, home)
        assert gh.server_errors == []

    per_worker = collections.Counter(ti["hostname"] for ti in instances if ti.get("hostname"))
    parts = executions(workers, run_id)
    per_worker_parts = collections.Counter(name for names in parts.values() for name in names)
    by_repo = {}
    crossed, broken = [], []
    for index, chain in sorted(chains(instances).items()):
        repo = chain["repo.agent_pass"].get("rendered_map_index") or str(index)
        by_repo[repo] = {t.split(".")[1]: (ti["state"], parts.get((t, index), [])) for t, ti in chain.items()}
        home_host = (parts.get(("repo.agent_pass", index)) or ["?"])[0]
        for task_id in ("repo.push", "repo.ci_wait", "repo.autofix"):
            ti, where = chain.get(task_id), parts.get((task_id, index), [])
            if ti and any(name != home_host for name in where):
                crossed.append(f"{repo}: agent_pass on {home_host}, {task_id.split('.')[1]} on {'+'.join(where)} "
                               f"-> {ti['state']}")
                if ti["state"] == "failed":
                    broken.append((repo, task_id, error_line(task_log(home, run_id, task_id, index))))
    histories = {name: lease_history(remotes[name])[lease_commits_before[name]:] for name in REPOS}
    backfill_ids = {r["dag_run_id"] for r in concurrent}
    held = {name: sorted({d["run_id"] for d in docs if d.get("run_id") in backfill_ids})
            for name, docs in histories.items()}
    figures = (f"celery ({'no shared disk' if private_disks else 'one shared workspace'}): run {run['state']} in {wall:.0f}s; task instances per worker (hostname): {dict(per_worker)}; "
               f"executions per worker (deferrable tasks run in parts): {dict(per_worker_parts)}; "
               f"cross-worker chain links: {len(crossed)}\n  " + "\n  ".join(crossed) +
               f"\nper repo: {json.dumps(by_repo)}\nbroken: {broken}"
               f"\ntwo concurrent backfill runs in {concurrent_wall:.0f}s: "
               + ", ".join(f"{r['dag_run_id']} {r['state']} {r.get('start_date')}..{r.get('end_date')}"
                           for r in concurrent)
               + f"\n  runs that held each repo's lease: {held}")
    print(figures)
    (tmp_path / "celery-figures.txt").write_text(figures)

    assert set(WORKERS) <= set(per_worker), figures  # both workers took task instances
    assert {c["repo"] for c in agent_calls(clone_env["agent_log"]) if c["kind"] == "pass"} == set(REPOS), figures
    assert not broken, f"chain links failed on another worker than their agent_pass: {broken}\n{figures}"
    assert run["state"] == "success", figures
    assert crossed, f"no chain crossed workers in this run; nothing was shown\n{figures}"
    for name in REPOS:
        assert log_subjects(remotes[name])[0].startswith("clone: "), (name, figures)
    assert red_subjects == [f"clone: fix CI failure on {RED}",
                                              f"clone: maintenance pass on {RED}"], figures
    for name in REPOS:  # every pass's commit reached its branch: no handoff ref is left behind
        assert pending_refs(remotes[name]) == [], (name, figures)
    # Shared state is in the metadata DB, not on a worker's disk: each repo's stall counter, a ledger entry per
    # agent run (4 passes + the autofix) that the summary (on one worker only) sums and then drops, and every
    # lease released.
    assert {f"clone.stall.{name}" for name in REPOS} <= set(variables), sorted(variables)
    dropped = re.search(r"token ledger: dropped the run's (\d+) entr", task_log(home, run_id, "summary", -1))
    assert dropped and int(dropped.group(1)) >= len(REPOS) + 1, (dropped, figures)
    assert not [k for k in variables if k.startswith("clone.tokens.")], sorted(variables)
    for name in REPOS:
        assert lease_free(remotes[name]), (name, "the summary left the lease held on the remote")

    # The two backfill runs: both green, they ran at the same time, and each repo's lease history on its remote
    # (a linear chain of fast-forward commits) never shows a run taking a lease another run still held.
    assert [r["state"] for r in concurrent] == ["success", "success"], figures
    first, second = sorted(concurrent, key=lambda r: r["start_date"])
    assert second["start_date"] < first["end_date"], f"the backfill runs did not overlap\n{figures}"
    for name in REPOS:
        assert exclusive(histories[name]), (name, histories[name], figures)
        assert held[name], (name, "no backfill run worked on this repo", figures)


def backfill_runs(api: Api) -> list[dict]:
    answer = api.client.get(f"/api/v2/dags/{DAG_ID}/dagRuns", params={"limit": 50})
    assert answer.status_code == 200, answer.text
    return sorted((r for r in answer.json()["dag_runs"] if r["run_type"] == "backfill"),
                  key=lambda r: r["logical_date"])


def lease_history(bare: Path) -> list[dict]:
    """Every lease document the remote's lease ref went through, oldest first ([] when there is none)."""
    ref = f"refs/clone/lease/{bare.name.removesuffix('.git')}"
    listed = subprocess.run(["git", "-C", str(bare), "rev-list", "--reverse", ref, "--"], capture_output=True,
                            text=True, timeout=60)
    if listed.returncode != 0:
        return []
    docs = []
    for commit in listed.stdout.split():
        shown = subprocess.run(["git", "-C", str(bare), "show", f"{commit}:lease.json"], capture_output=True,
                               text=True, timeout=60, check=True)
        docs.append(json.loads(shown.stdout))
    return docs


def exclusive(history: list[dict]) -> bool:
    """No document names a run while another run's lease had not been released (``{}``) before it."""
    holder = None
    for doc in history:
        run_id = doc.get("run_id") if doc else None
        if run_id is None:
            holder = None
        elif holder is None:
            holder = run_id
        elif run_id != holder:
            return False
    return True


def pending_refs(bare: Path, under: str = "refs/clone/pending/") -> list[str]:
    done = subprocess.run(["git", "-C", str(bare), "for-each-ref", "--format=%(refname)", under],
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.split()


def lease_free(bare: Path) -> bool:
    """Every lease ref on ``bare`` says free (``{}``: released leases stay as a commit saying so)."""
    for ref in pending_refs(bare, "refs/clone/lease/"):
        shown = subprocess.run(["git", "-C", str(bare), "show", f"{ref}:lease.json"], capture_output=True,
                               text=True, timeout=60, check=True)
        if json.loads(shown.stdout):
            return False
    return True
