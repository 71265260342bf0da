"""One pass per repo at a time, across runs, backfills and manual triggers.

A repo's chain holds a lease from its agent pass until the run's summary: on the repo's remote
(``refs/clone/lease/<repo>``, compare-and-swap pushes, exclusive across workers) or, without a remote, a
file ``CLONE_WORKSPACE/leases/<repo>.json`` (:mod:`clone.state.lease_store`). It names the holding run
(``dag_id``, ``run_id``) and the process groups the pass started (``host``, ``pgid`` and the leader's start
time, so that a reused process id is never mistaken for one of them; only the host that started a group
kills what is left of it).

A second run asks Airflow for the holding run's state (:func:`dagrun_state`): while that run is
``running`` or ``queued`` the repo is skipped with a log line naming the holder; a run in any
other state (failed, success, gone) is dead, so whatever is left of its process groups is killed
and the lease is taken over at once. Only when the state cannot be told (a lease written by an
older Clone, the lookup failed) is the lease trusted until it is ``stale_after`` seconds old.

A run's state lags a killed worker, so a working pass refreshes the lease's ``heartbeat``
(:mod:`clone.state.heartbeat`); one older than ``HEARTBEAT_MISSES`` intervals is ``silent`` and taken over
like a dead one, whatever the run's state says. Between tasks it is cleared (the state decides).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from clone.errors import CloneError
from clone.state import lease_store
from clone.state.lease_store import KEEP

log = logging.getLogger(__name__)

#: States of a DAG run that may still work on the repo.
LIVE_STATES = frozenset({"running", "queued"})
GONE = "gone"  # what dagrun_state says for a run Airflow no longer knows
#: (dag_id, run_id) -> the run's state, ``GONE``, or None when it cannot be told.
RunState = Callable[[str, str], "str | None"]
#: A process started this long before the recorded leader start still counts as the same (clock rounding).
_START_SLACK_SECONDS = 1.0
#: A working holder whose heartbeat is older than this many of its intervals has stopped working.
HEARTBEAT_MISSES = 4


def lease_path(workspace: Path, repo: str) -> Path:
    return lease_store.lease_path(workspace, repo)


def dagrun_state(dag_id: str, run_id: str) -> str | None:
    """The state of ``run_id`` as Airflow's Task SDK reports it (only inside a running task).

    ``GONE`` when Airflow answers that the run does not exist, None when the question could not be
    asked or answered (the caller then falls back to the lease's age). The one place that knows
    where run states come from, so the store can change without touching the lease rules.
    """
    try:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        state = RuntimeTaskInstance.get_dagrun_state(dag_id=dag_id, run_id=run_id)
    except Exception as e:  # noqa: BLE001 - any failure means "cannot tell", never "dead"
        text = str(e).lower()
        if "404" in text or "not found" in text or "not_found" in text:
            return GONE
        log.warning("cannot read the state of run %s of %s (%r); trusting its lease until it is stale",
                    run_id, dag_id, e)
        return None
    return str(getattr(state, "value", state)).lower() if state is not None else None


def verdict(holder: dict, run_id: str, state: str | None, now: float, stale_after: float) -> str:
    """What a pass of ``run_id`` may do with a lease ``holder`` (the file's content, ``{}`` if none).

    ``free`` (no lease), ``ours`` (held by ``run_id`` already: an earlier attempt of this run),
    ``busy`` (a live run holds it), ``dead`` (its run is over), ``silent`` (its pass stopped heartbeating),
    ``stale`` (state unknown, older than ``stale_after``). ``state``: the holder's run state or None.
    """
    if not holder:
        return "free"
    if holder.get("run_id") == run_id:
        return "ours"
    if state is not None and state not in LIVE_STATES:
        return "dead"
    if silence(holder, now) is not None:
        return "silent"
    if state is not None:
        return "busy"
    age = now - float(holder.get("since", 0) or 0)
    return "busy" if age < stale_after else "stale"


def acquire(workspace: Path, repo: str, run_id: str, stale_after: float, now: float | None = None,
            dag_id: str | None = None, run_state: RunState | None = None) -> str | None:
    """Take the repo's lease for ``run_id`` of ``dag_id``. Returns None on success, else who holds it.

    ``run_state`` tells whether the holder's run still lives (:func:`dagrun_state` in a task); without
    it only the lease's age counts. Before a lease of a dead, stale or earlier attempt is taken over,
    what is left of the process groups it recorded is killed.
    """
    now = time.time() if now is None else now

    def change(holder: dict) -> tuple[Any, str | None]:
        other = holder and holder.get("run_id") != run_id
        state = None
        if other and run_state is not None and holder.get("dag_id") and holder.get("run_id"):
            state = run_state(str(holder["dag_id"]), str(holder["run_id"]))
        decision = verdict(holder, run_id, state, now, stale_after)
        who = f"run {holder.get('run_id', '?')}"
        if decision == "busy":
            age = now - float(holder.get("since", 0) or 0)
            return KEEP, f"{who} (since {age / 60:.0f} min{f', {state}' if state else ''})"
        if decision in ("dead", "silent", "stale"):
            quiet = silence(holder, now) or 0
            why = {"dead": f"its run is {state}", "stale": f"it is older than {stale_after / 3600:.1f} h",
                   "silent": f"its pass stopped heartbeating {quiet:.0f} s ago (limit {HEARTBEAT_MISSES} x "
                             f"{holder.get('heartbeat_every')} s), its run {state or 'unknown'}"}[decision]
            log.warning("%s: taking over the lease of %s holder %s of %s (%s)", repo,
                        "silent" if decision == "silent" else "dead", who, holder.get("dag_id", "?"), why)
        killed = kill_leftovers(holder.get("groups") or [])
        if killed:
            log.warning("%s: killed %d process(es) left by %s: %s", repo, len(killed), who,
                        ", ".join(killed))
        return {"run_id": run_id, "dag_id": dag_id, "since": now, "groups": []}, None

    holder = lease_store.transact(workspace, repo, change)
    if holder is None and lease_store.remote_of(repo):  # ours now: start this worker's group list afresh
        _restart_local_groups(workspace, repo, run_id)
    return holder


def _restart_local_groups(workspace: Path, repo: str, run_id: str | None) -> None:
    """Kill what is left of the groups this worker listed for ``repo`` (any run: the lease says nobody else
    works here now), then list none, for ``run_id`` (None: forget the list)."""

    def change(data: dict) -> tuple[Any, None]:
        killed = kill_leftovers(data.get("groups") or [])
        if killed:
            log.warning("%s: killed %d process(es) left by run %s: %s", repo, len(killed),
                        data.get("run_id", "?"), ", ".join(killed))
        return ({"run_id": run_id, "groups": []} if run_id else None), None

    lease_store.transact_groups(workspace, repo, change)


def _group_members(pgid: int, started: float) -> list[psutil.Process]:
    """Live processes of group ``pgid`` that belong to the group whose leader started at ``started``."""
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) != pgid or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            created = proc.create_time()
        except (ProcessLookupError, psutil.Error):
            continue
        if proc.pid == pgid and abs(created - started) > _START_SLACK_SECONDS:
            return []  # the id was reused by another group's leader: none of ours can be left in it
        if created >= started - _START_SLACK_SECONDS:
            members.append(proc)
    return members


def kill_leftovers(groups: list[Any]) -> list[str]:
    """SIGKILL what is left of the recorded process groups; returns ``"pid cmd"`` of each killed process."""
    killed, victims = [], []
    for group in groups:
        try:
            pgid, started = int(group["pgid"]), float(group["started"])
        except (KeyError, TypeError, ValueError):
            log.warning("ignoring a malformed process group in a lease: %r", group)
            continue
        if group.get("host", _HOST()) != _HOST():
            log.warning("process group %s was started on %s; only that worker can end it", pgid, group["host"])
            continue
        if pgid <= 1 or pgid == os.getpgrp():
            continue  # never this task's own group, nor init's
        for proc in _group_members(pgid, started):
            with contextlib.suppress(psutil.Error):
                name = " ".join(proc.cmdline())[:120]
                proc.send_signal(signal.SIGKILL)
                killed.append(f"{proc.pid} {name}")
                victims.append(proc)
    _, alive = psutil.wait_procs(victims, timeout=5)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            if proc.status() != psutil.STATUS_ZOMBIE:  # a zombie is dead, only not yet reaped by init
                log.warning("process %d survived SIGKILL", proc.pid)
    return killed


def record_group(workspace: Path, repo: str, run_id: str, pgid: int) -> None:
    """Note in ``run_id``'s lease of ``repo`` a process group its pass started (and forget finished ones)."""
    try:
        started = psutil.Process(pgid).create_time()
    except psutil.Error:
        return  # already gone: nothing of it to kill later
    _update_groups(workspace, repo, run_id, add={"pgid": pgid, "started": started, "host": _HOST()})


def forget_group(workspace: Path, repo: str, run_id: str, pgid: int) -> None:
    """Drop ``pgid`` from the lease once nothing of it is left (a daemon it left behind keeps it listed)."""
    _update_groups(workspace, repo, run_id)


def _group_alive(pgid: Any) -> bool:
    """Whether any process is left in group ``pgid`` (signal 0 checks without sending anything)."""
    if not isinstance(pgid, int) or pgid <= 1:
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    return True


def _update_groups(workspace: Path, repo: str, run_id: str, add: dict | None = None) -> None:
    """Rewrite ``run_id``'s lease with its groups that still have members, plus ``add``."""

    def change(data: dict) -> tuple[Any, None]:
        if data.get("run_id") != run_id:
            return KEEP, None  # not ours (taken over, released): never write into another run's lease
        groups = [g for g in data.get("groups") or [] if isinstance(g, dict)
                  and (g.get("host", _HOST()) != _HOST() or _group_alive(g.get("pgid")))]
        if add is not None:
            groups.append(add)
        if add is None and groups == data.get("groups"):
            return KEEP, None  # nothing changed: no write (a remote lease costs a push)
        return {**data, "groups": groups}, None

    lease_store.transact_groups(workspace, repo, change)


def silence(holder: dict, now: float) -> float | None:
    """Seconds since a working holder's last heartbeat when that is over ``HEARTBEAT_MISSES`` of its
    intervals, else None (not silent: beating, between tasks, or an older Clone that never beat)."""
    beat, every = holder.get("heartbeat"), holder.get("heartbeat_every")
    if not all(type(v) in (int, float) for v in (beat, every)) or every <= 0:
        return None
    return now - beat if now - beat > HEARTBEAT_MISSES * every else None


def beat(workspace: Path, repo: str, run_id: str, every: float, working: bool = True) -> None:
    """Stamp ``run_id``'s lease with a heartbeat (``working``) or clear it (its task stops working)."""
    def change(data: dict) -> tuple[Any, None]:
        if data.get("run_id") != run_id:
            return KEEP, None  # taken over (or released): never write into another run's lease
        return {**data, "heartbeat": time.time() if working else None, "heartbeat_every": every}, None

    lease_store.transact(workspace, repo, change)


def release(workspace: Path, repo: str, run_id: str) -> bool:
    """Give the lease back if ``run_id`` holds it, killing what is left of the process groups it lists."""

    def change(data: dict) -> tuple[Any, bool]:
        if data.get("run_id") != run_id:
            return KEEP, False
        killed = kill_leftovers(data.get("groups") or [])  # the run is over: what its passes left is not
        if killed:
            log.warning("%s: killed %d process(es) left by run %s: %s", repo, len(killed), run_id,
                        ", ".join(killed))
        return None, True

    released = lease_store.transact(workspace, repo, change)
    if released and lease_store.remote_of(repo):
        _release_local_groups(workspace, repo, run_id)
    return released


def _release_local_groups(workspace: Path, repo: str, run_id: str) -> None:
    def change(data: dict) -> tuple[Any, None]:
        if data.get("run_id") != run_id:
            return KEEP, None
        kill_leftovers(data.get("groups") or [])
        return None, None

    lease_store.transact_groups(workspace, repo, change)


def release_all(workspace: Path, run_id: str) -> list[str]:
    """Release every lease ``run_id`` holds (remote ones named with ``lease_store.use_remote``, and files
    here); one unreachable remote does not keep the other repos' leases held. Returns the repos released."""
    released = []
    for repo in lease_store.known(workspace):
        try:
            released += [repo] if release(workspace, repo, run_id) else []
        except CloneError as e:
            log.warning("%s: lease of run %s not released (%s); the next run takes it over", repo, run_id, e)
    return released


def _HOST() -> str:  # noqa: N802 - reads like the constant it is, but asked each time (tests fake it)
    return socket.gethostname()
