"""bench/fleet_page.py runs end to end on a small seeded DB: a real api-server, the plugin's endpoints.
No timing is asserted; the figures at 1,000 repos x 90 days are in the README ("The Clone fleet page")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "fleet_page.py"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_bench_reads_every_seeded_run_and_repo(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLONE_", "AIRFLOW"))}
    result = subprocess.run([sys.executable, str(BENCH), "--repos", "12", "--days", "9", "--repeats", "1"],
                            cwd=tmp_path, env={**env, "TMPDIR": str(tmp_path)}, capture_output=True, text=True,
                            timeout=540)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "seeded 9 runs x 12 repos" in lines[0]
    assert any(line.startswith("GET /clone/api/fleet") for line in lines) and any(
        line.startswith("GET /clone/ ") for line in lines), result.stdout
    assert lines[-1] == "rows 13, runs read 9, chart days 9", result.stdout  # 12 repos + the disabled one
    assert not list(tmp_path.glob("clone-bench-page-*")), "the seeded DB is removed"
