"""Stall detection: a repo whose last CLONE_STALL_PASSES passes changed nothing is skipped until
its branch gets new commits, or a user clears the state (``include/scripts/stall.py clear NAME`` where the
Airflow CLI works, or ``airflow variables delete clone.stall.NAME``).

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


def _parse(data: object) -> StallState:
    try:
        return StallState(no_change_passes=int(data["no_change_passes"]), head=str(data["head"]))  # type: ignore[index]
    except (ValueError, KeyError, TypeError):
        return StallState()  # damaged state only costs one extra pass


def load(workspace: Path, repo: str) -> StallState:
    if store.in_task():
        data = store.get(store.key("stall", repo))
        return StallState() if data is None else _parse(data)
    try:
        return _parse(json.loads(state_path(workspace, repo).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return StallState()
    except ValueError:
        return StallState()


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


#: Where the stall counters of the tasks live: ``clone.stall.<repo>`` Variables.
VARIABLE_PREFIX = store.key("stall") + "."


def recorded(workspace: Path) -> tuple[dict[str, tuple[StallState, str]], str | None]:
    """Every stall state an operator's tool can see (outside a task): the ``clone.stall.*`` Variables in
    Airflow's metadata database, which the tasks of every worker write, then this machine's files.

    Returns ``{repo: (state, where)}`` and, when the metadata database could not be read, why (else None)."""
    found: dict[str, tuple[StallState, str]] = {}
    problem = None
    try:
        for name, data in store.metastore_items(VARIABLE_PREFIX).items():
            found[name.removeprefix(VARIABLE_PREFIX)] = (_parse(data), f"Variable {name}")
    except store.MetastoreUnavailable as e:
        problem = str(e)
    folder = workspace / "state"
    for path in sorted(folder.glob("*.stall.json")) if folder.is_dir() else []:
        repo = path.name.removesuffix(".stall.json")
        found.setdefault(repo, (load(workspace, repo), f"file {path}"))
    return found, problem


def clear_everywhere(workspace: Path, repo: str) -> tuple[list[str], str | None]:
    """Forget ``repo``'s stall state in the metadata database (Variable ``clone.stall.<repo>``) and in this
    machine's file. Returns where a state was removed and, when the database could not be reached, why."""
    removed, problem, name = [], None, store.key("stall", repo)
    try:
        if store.metastore_delete(name):
            removed.append(f"Variable {name}")
    except store.MetastoreUnavailable as e:
        problem = str(e)
    path = state_path(workspace, repo)
    if path.exists():
        path.unlink(missing_ok=True)
        removed.append(f"file {path}")
    return removed, problem
