#!/usr/bin/env python
"""Benchmark of the Clone fleet page's data endpoint at scale.

    .venv/bin/python bench/fleet_page.py                          # 1,000 repos x 90 days
    .venv/bin/python bench/fleet_page.py --repos 20 --days 10     # a smoke run

Seeds a fresh SQLite metadata DB (``airflow db migrate``, then one ``clone_fleet`` run per day, each
with the summary's ``fleet_record`` XCom holding one entry per repo, written straight to the tables as
the Task SDK stores them), starts a real ``airflow api-server`` on it (which loads the plugin), logs in
through ``POST /auth/token`` and times ``GET /clone/api/fleet`` (the data) and ``GET /clone/`` (the
page): the first request (records parsed) and the median of the next ``--repeats`` (records cached),
with each answer's size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUTCOMES = ("pushed", "autofixed", "failed", "skipped", "no change")


def entry(rng: random.Random, index: int) -> dict:
    outcome = rng.choices(OUTCOMES, weights=(50, 10, 5, 10, 25))[0]
    skipped = outcome == "skipped"
    return {"repo": f"repo-{index:04d}", "map_index": index, "outcome": outcome, "pass": "changed",
            "commits": {"pushed": 1, "autofixed": 2}.get(outcome, 0), "sha": f"{rng.getrandbits(160):040x}",
            "branch": "main", "github": f"acme/repo-{index:04d}",
            "ci": "failure" if outcome == "failed" else ("-" if skipped else "success"),
            "ci_url": f"https://github.com/acme/repo-{index:04d}/actions/runs/{rng.randrange(10**9)}",
            "flaky": False, "autofix": 1 if outcome == "autofixed" else 0, "autofix_failed": outcome == "failed",
            "tokens": rng.randrange(5_000, 80_000), "failed_step": None,
            "skip_kind": "stall" if skipped else None,
            "skip_reason": "stalled: the last 3 passes changed nothing" if skipped else None,
            "incidents": [], "pull_url": None}


def seed(db: Path, repos: int, days: int, now: dt.datetime) -> int:
    rng = random.Random(14)
    with sqlite3.connect(db) as con:
        for day in range(days):
            start = now - dt.timedelta(days=days - 1 - day, hours=1)
            run_id = f"scheduled__{start:%Y-%m-%dT%H:%M:%S}+00:00"
            stamp = start.strftime("%Y-%m-%d %H:%M:%S.000000")
            cur = con.execute(
                "INSERT INTO dag_run (dag_id, run_id, state, run_type, start_date, end_date, logical_date, "
                "run_after, clear_number, span_status) VALUES ('clone_fleet', ?, 'success', 'scheduled', ?, ?, ?, "
                "?, 0, 'ended')", (run_id, stamp, stamp, stamp, stamp))
            record = {"v": 1, "repos": [entry(rng, i) for i in range(repos)], "budget_tokens": repos * 60_000,
                      "disabled": [{"repo": "repo-off", "reason": "enabled: false in repos.yaml"}], "paused": False}
            con.execute("INSERT INTO xcom (dag_run_id, task_id, map_index, key, dag_id, run_id, value, timestamp) "
                        "VALUES (?, 'summary', -1, 'fleet_record', 'clone_fleet', ?, ?, ?)",
                        (cur.lastrowid, run_id, json.dumps(record), stamp))
    return db.stat().st_size


def timed(client: httpx.Client, path: str) -> tuple[float, int]:
    started = time.perf_counter()
    answer = client.get(path)
    elapsed = time.perf_counter() - started
    answer.raise_for_status()
    return elapsed, len(answer.content)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from tests.airflow_home import airflow, airflow_env
    from tests.standalone import free_port

    with tempfile.TemporaryDirectory(prefix="clone-bench-page-") as tmp:
        home, port = Path(tmp), free_port()
        env = airflow_env(home, {"AIRFLOW__API__PORT": str(port), "AIRFLOW__API__HOST": "127.0.0.1",
                                 "AIRFLOW__API__WORKERS": "1", "CLONE_UI_DAYS": str(max(args.days, 7))})
        result = airflow(env, "db", "migrate", timeout=300)
        if result.returncode:
            print(result.stdout, result.stderr)
            return 1
        now = dt.datetime.now(dt.timezone.utc)
        started = time.perf_counter()
        size = seed(home / "airflow.db", args.repos, args.days, now)
        print(f"seeded {args.days} runs x {args.repos} repos in {time.perf_counter() - started:.1f} s "
              f"(DB {size / 1e6:.1f} MB)")
        with (home / "api.log").open("wb") as out:
            server = subprocess.Popen([str(Path(sys.executable).with_name("airflow")), "api-server", "--port",
                                       str(port)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        try:
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300)
            passwords = home / "simple_auth_manager_passwords.json.generated"
            deadline = time.monotonic() + 180
            while True:
                try:
                    if passwords.is_file() and client.get("/api/v2/monitor/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    print((home / "api.log").read_text(errors="replace")[-4000:])
                    return 1
                time.sleep(0.5)
            password = json.loads(passwords.read_text())["admin"]
            token = client.post("/auth/token", json={"username": "admin", "password": password}).json()
            client.headers["Authorization"] = f"Bearer {token['access_token']}"
            cold, data_size = timed(client, "/clone/api/fleet")
            warm = statistics.median(timed(client, "/clone/api/fleet")[0] for _ in range(args.repeats))
            page_cold, page_size = timed(client, "/clone/")
            page_warm = statistics.median(timed(client, "/clone/")[0] for _ in range(args.repeats))
            data = client.get("/clone/api/fleet").json()
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
    print(f"{'endpoint':<22}{'first (s)':>12}{'cached, median (s)':>22}{'size (KB)':>12}")
    print(f"{'GET /clone/api/fleet':<22}{cold:>12.2f}{warm:>22.2f}{data_size / 1024:>12.0f}")
    print(f"{'GET /clone/':<22}{page_cold:>12.2f}{page_warm:>22.2f}{page_size / 1024:>12.0f}")
    print(f"rows {len(data['repos'])}, runs read {data['runs']}, chart days {len(data['series'])}")
    return 0 if len(data["repos"]) == args.repos + 1 and data["runs"] == args.days else 1


if __name__ == "__main__":
    sys.exit(main())
