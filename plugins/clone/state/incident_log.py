"""The run's incident list: each incident a chain recorded and where it is (pushed, on the work branch, or
kept in the workspace), so the run's note can show what the repos' INCIDENTS.md may not (yet) hold.

Like the token ledger, a small append-only file per run under the workspace, written under a lock.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from clone.util import yamlio


def log_path(workspace: Path, run_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)[:200]
    return workspace / "runs" / f"{safe}.incidents.jsonl"


def record(workspace: Path, run_id: str, repo: str, title: str, where: str) -> None:
    path = log_path(workspace, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with yamlio.locked(path), open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"repo": repo, "title": title, "where": where}) + "\n")


def recorded(workspace: Path, run_id: str) -> list[dict[str, str]]:
    """The run's incidents, oldest first (unreadable lines are skipped)."""
    path = log_path(workspace, run_id)
    if not path.exists():
        return []
    found = []
    with yamlio.locked(path):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict) and all(isinstance(item.get(k), str) for k in ("repo", "title", "where")):
                found.append({k: item[k] for k in ("repo", "title", "where")})
    return found
