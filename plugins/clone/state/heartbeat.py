"""The heartbeat a working pass keeps in its repo's lease (see :mod:`clone.state.lease`).

A thread of the task process stamps the lease every ``every`` seconds while the block runs and
clears the stamp when it ends, so a worker killed mid-pass leaves a heartbeat that stops: the next
run takes the repo over after ``lease.HEARTBEAT_MISSES`` intervals instead of waiting for Airflow's
own task heartbeat timeout to fail the task.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path

from clone.state import lease

log = logging.getLogger(__name__)


@contextlib.contextmanager
def beating(workspace: Path, repo: str, run_id: str, every: float):
    """While the block runs, refresh ``run_id``'s lease heartbeat every ``every`` seconds (0: never)."""
    if every <= 0:
        yield
        return
    stop = threading.Event()

    def beat(working: bool = True) -> None:
        try:
            lease.beat(workspace, repo, run_id, every, working=working)
        except Exception:  # noqa: BLE001 - a missed beat (a remote that blinked) is survivable; failing the
            # pass after its agent ran, or hiding the pass's own error in ``finally``, is not
            log.exception("%s: could not %s the lease heartbeat", repo, "refresh" if working else "clear")

    def loop() -> None:
        while not stop.wait(every):
            beat()

    beat()
    thread = threading.Thread(target=loop, name=f"lease-heartbeat-{repo}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every + 5)
        beat(working=False)
