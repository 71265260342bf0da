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
    assert set(rows) == {("deferrable", "run listed"), ("poke", "run listed"),
                         ("deferrable", "run late"), ("poke", "run late")}
    assert all(row["verdict"] == "success" for row in rows.values())

    deferrable, poke = rows["deferrable", "run listed"], rows["poke", "run listed"]
    assert deferrable["meets_target"] and deferrable["counted"] <= 3
    assert deferrable["slot_seconds_waiting"] == 0
    assert deferrable["not_modified"] >= 1  # the trigger polled with the worker's ETag
    assert deferrable["requests"][0] == "runs:200" and deferrable["requests"][-1] == "runs:200"
    assert poke["not_modified"] == 0 and poke["counted"] == poke["total"] > deferrable["counted"]
    assert poke["slot_seconds_waiting"] > 0 and not poke["meets_target"]
    # A run not yet listed at the worker's check costs one workflows lookup, made once.
    late = rows["deferrable", "run late"]
    assert sum(r.startswith("workflows:") for r in late["requests"]) == 1
    assert late["slot_seconds_waiting"] == 0
