"""``bench/ci_watch.py`` runs, prints its table, and the deferrable CI watch keeps its request budget.

Only request counts and states are asserted: the script's timings are figures, not test conditions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "ci_watch.py"


def test_ci_watch_bench_runs_and_the_deferrable_watch_meets_the_request_target(tmp_path):
    command = [sys.executable, str(SCRIPT), "--ci-seconds", "90", "--poll-seconds", "30", "--json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[1].startswith("| mode ") and "counted" in lines[1] and "slot s waiting" in lines[1]
    rows = {(row["mode"].split()[0], row["timeline"]): row for row in json.loads(lines[-1])}
    assert set(rows) == {(mode, timeline) for mode in ("deferrable", "poke")
                         for timeline in ("run listed", "run late", "late red workflow")}
    assert {key: row["verdict"] for key, row in rows.items()} == {
        key: "failure" if key[1] == "late red workflow" else "success" for key in rows}

    deferrable, poke = rows["deferrable", "run listed"], rows["poke", "run listed"]
    assert deferrable["meets_target"] and deferrable["counted"] <= 4
    assert deferrable["slot_seconds_waiting"] == 0
    assert deferrable["not_modified"] >= 1  # the trigger polled with the worker's ETag
    assert deferrable["requests"][0] == "runs:200"
    # Green after one check-suites read and a settle period of free conditional polls.
    assert deferrable["requests"][-2:] == ["runs:304(free)", "check-suites:304(free)"]
    assert deferrable["verdict_at"] >= deferrable["ci_done_at"] + 30
    assert poke["not_modified"] == 0 and poke["counted"] == poke["total"] > deferrable["counted"]
    assert poke["slot_seconds_waiting"] > 0 and not poke["meets_target"]
    # A run not yet listed at the worker's check costs one workflows lookup, made once.
    late = rows["deferrable", "run late"]
    assert sum(r.startswith("workflows:") for r in late["requests"]) == 1
    assert late["slot_seconds_waiting"] == 0
    # The late red workflow is caught; without the settle period it is missed (green).
    assert any(r.startswith("check-suites:") for r in rows["deferrable", "late red workflow"]["requests"])
    unsettled = subprocess.run([*command[:-1], "--settle-seconds", "0", "--json"], capture_output=True,
                               text=True, timeout=120, cwd=tmp_path)
    assert unsettled.returncode == 0, unsettled.stdout + unsettled.stderr
    missed = {(row["mode"].split()[0], row["timeline"]): row
              for row in json.loads(unsettled.stdout.splitlines()[-1])}
    assert missed["deferrable", "late red workflow"]["verdict"] == "success"
