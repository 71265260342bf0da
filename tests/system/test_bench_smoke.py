"""bench/fleet_scale.py runs end to end on tiny fleets. No timing is asserted: figures come from the
benchmark itself, run at 100 and 1,000 repos (see the README's Scale section)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "fleet_scale.py"


@pytest.mark.slow
def test_bench_runs_on_tiny_fleets(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLONE_", "GIT_", "AIRFLOW"))}
    result = subprocess.run([sys.executable, str(BENCH), "--sizes", "4,8", "--repeats", "1", "--report-only"],
                            cwd=tmp_path, env={**env, "TMPDIR": str(tmp_path)}, capture_output=True,
                            text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line[:34].strip(): line[34:].split() for line in result.stdout.splitlines()}
    assert rows[""][:4] == ["4", "repos", "8", "repos"]
    for label in ("dags/ parse (DagBag, median)", "discovery: clone.fleet.discover", "discovery: find + git log -1",
                  "discovery speed-up"):
        assert label in rows, result.stdout
    # 4 and 8 checkouts plus a worktree; both methods found the same active ones.
    assert rows["active checkouts (both agree)"] == ["3", "3"]
    assert "DIFFER" not in result.stdout
    assert not list(tmp_path.glob("clone-bench-*")), "the temporary fleets are removed"
