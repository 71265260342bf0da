"""Stall detection: a repo whose last CLONE_STALL_PASSES passes changed nothing is skipped until
its branch gets new commits, or a user clears the state (``include/scripts/stall.py clear NAME``, or on a
deployment with several workers ``airflow variables delete clone.stall.NAME``).

Inside a task the state is the Airflow Variable ``clone.stall.<repo>`` (every worker sees it; only the pass
holding the repo's lease writes it); elsewhere a file under the workspace (:mod:`clone.state.store`)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from clone.state import store
from clone.util import yamlio


@dataclasses.dataclass
class StallState:
    """Consecutive no-change passes, and the branch head they all started from."""

    no_change_passes: int = 0
    head: str = ""


def state_path(workspace: Path, repo: str) -> Path:
    return workspace / "state" / f"{repo}.stall.json"


def load(workspace: Path, repo: str) -> StallState:
    path = state_path(workspace, repo)
    try:
        data = store.get(store.key("stall", repo)) if store.in_task() else \
            json.loads(path.read_text(encoding="utf-8"))
        if data is None:
            return StallState()
        return StallState(no_change_passes=int(data["no_change_passes"]), head=str(data["head"]))
    except FileNotFoundError:
        return StallState()
    except (ValueError, KeyError, TypeError):
        return StallState()  # a damaged state file only costs one extra pass


def stalled_reason(state: StallState, head: str, limit: int) -> str | None:
    """Why the repo is skipped, or None. New commits on the branch (a new head) clear the stall."""
    if limit <= 0 or state.no_change_passes < limit or state.head != head:
        return None
    return (f"stalled: the last {state.no_change_passes} passes changed nothing (CLONE_STALL_PASSES={limit}) "
            f"and the branch is still at {head[:12]}; it resumes on new commits, or clear it with "
            "`include/scripts/stall.py clear <repo>`")


def record_pass(workspace: Path, repo: str, head: str, changed: bool) -> StallState:
    """Update the state after a pass that started from ``head``."""
    previous = load(workspace, repo)
    if changed:
        state = StallState(0, head)
    elif previous.head == head:
        state = StallState(previous.no_change_passes + 1, head)
    else:
        state = StallState(1, head)
    if store.in_task():
        store.put(store.key("stall", repo), dataclasses.asdict(state))
        return state
    path = state_path(workspace, repo)
    yamlio.atomic_write_text(path, json.dumps(dataclasses.asdict(state)) + "\n")
    return state


def clear(workspace: Path, repo: str) -> bool:
    """Forget the repo's stall state; True when there was one."""
    if store.in_task():
        if store.get(store.key("stall", repo)) is None:
            return False
        store.delete(store.key("stall", repo))
        return True
    try:
        state_path(workspace, repo).unlink()
        return True
    except FileNotFoundError:
        return False
