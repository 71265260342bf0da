"""One pass per repo at a time, across runs, backfills and manual triggers.

A repo's chain (agent pass -> push -> CI wait -> autofix) uses the repo's workspace from the
agent pass until the run's summary. A lease file ``CLONE_WORKSPACE/leases/<repo>.json``,
created atomically (``O_EXCL``) by the agent pass and removed by the summary, marks it busy.
A second run finds it and skips that repo with a log line naming the holder. A lease older
than ``stale_after`` seconds (its run died without a summary) is taken over.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from clone import yamlio


def lease_path(workspace: Path, repo: str) -> Path:
    return workspace / "leases" / f"{repo}.json"


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}


def acquire(workspace: Path, repo: str, run_id: str, stale_after: float, now: float | None = None) -> str | None:
    """Take the repo's lease for ``run_id``. Returns None on success, else who holds it (for the log)."""
    now = time.time() if now is None else now
    path = lease_path(workspace, repo)
    path.parent.mkdir(parents=True, exist_ok=True)
    with yamlio.locked(path):
        holder = _read(path)
        if path.exists() and holder.get("run_id") != run_id:
            age = now - float(holder.get("since", 0))
            if age < stale_after:
                return f"run {holder.get('run_id', '?')} (since {age / 60:.0f} min)"
            os.unlink(path)  # the holder died without releasing it
        yamlio.atomic_write_text(path, json.dumps({"run_id": run_id, "since": now}) + "\n")
    return None


def release(workspace: Path, repo: str, run_id: str) -> bool:
    """Give the lease back if ``run_id`` holds it."""
    path = lease_path(workspace, repo)
    if not path.exists():
        return False
    with yamlio.locked(path):
        if _read(path).get("run_id") != run_id:
            return False
        path.unlink(missing_ok=True)
    return True


def release_all(workspace: Path, run_id: str) -> list[str]:
    """Release every lease ``run_id`` holds; returns the repos released."""
    folder = workspace / "leases"
    released = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        repo = path.name.removesuffix(".json")
        if release(workspace, repo, run_id):
            released.append(repo)
    return released
