"""The run's token ledger outside a task (files under the workspace); inside a task it is Variables, which the
Celery test checks on a real deployment (summed, then dropped by the summary)."""

from __future__ import annotations

from clone.state import budget


def test_ledger_sums_and_is_dropped_once_the_run_is_over(tmp_path):
    budget.record(tmp_path, "run-1", "alpha", "pass", 1200)
    budget.record(tmp_path, "run-1", "beta", "autofix", 300)
    budget.record(tmp_path, "run-2", "alpha", "pass", 7)
    assert budget.spent(tmp_path, "run-1") == 1500
    assert budget.forget(tmp_path, "run-1") == 1
    assert budget.spent(tmp_path, "run-1") == 0
    assert budget.spent(tmp_path, "run-2") == 7  # another run's ledger is left alone
    assert budget.forget(tmp_path, "run-1") == 0
