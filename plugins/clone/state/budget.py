"""The run's token ledger: CLONE_MAX_TOKENS_PER_RUN stops new passes once a run has spent it.

Passes of one DAG run execute in parallel processes, on any worker. Inside a task the ledger is a set of
Airflow Variables ``clone.tokens.<run>.<repo>.<kind>.<id>``, one per agent run (so parallel writers never
race on a key), summed by prefix; elsewhere (tools, tests) a small append-only file per run under the
workspace, written under a lock (:mod:`clone.state.store`).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from pathlib import Path

from clone.state import store
from clone.util import yamlio

log = logging.getLogger(__name__)


def ledger_path(workspace: Path, run_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)[:200]
    return workspace / "runs" / f"{safe}.tokens.jsonl"


def record(workspace: Path, run_id: str, repo: str, kind: str, tokens: int) -> None:
    """Add an agent run's tokens to the run's ledger."""
    if store.in_task():
        store.put(store.key("tokens", run_id, repo, kind, uuid.uuid4().hex[:12]),
                  {"repo": repo, "kind": kind, "tokens": int(tokens)})
        return
    path = ledger_path(workspace, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with yamlio.locked(path), open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"repo": repo, "kind": kind, "tokens": int(tokens)}) + "\n")


def spent(workspace: Path, run_id: str) -> int:
    """Tokens recorded so far for ``run_id`` (unreadable lines are ignored, not fatal)."""
    if store.in_task():
        total = 0
        for name in store.names(store.key("tokens", run_id) + "."):
            entry = store.get(name)
            try:
                total += int(entry["tokens"])  # type: ignore[index]
            except (ValueError, KeyError, TypeError):
                continue
        return total
    path = ledger_path(workspace, run_id)
    if not path.exists():
        return 0
    total = 0
    with yamlio.locked(path):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                total += int(json.loads(line)["tokens"])
            except (ValueError, KeyError, TypeError):
                continue
    return total


def forget(workspace: Path, run_id: str) -> int:
    """Drop ``run_id``'s ledger once the run is over (its summary); returns the entries dropped. A
    failure to delete one is logged and left for the next summary's warning, never fatal."""
    if not store.in_task():
        path = ledger_path(workspace, run_id)
        existed = path.exists()
        path.unlink(missing_ok=True)
        return int(existed)
    dropped = 0
    for name in store.names(store.key("tokens", run_id) + "."):
        try:
            store.delete(name)
            dropped += 1
        except Exception as e:  # noqa: BLE001 - a Variable left behind is only clutter
            log.warning("token ledger: could not delete the Variable %s: %s", name, e)
    return dropped
