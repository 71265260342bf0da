"""The one way Clone runs a subprocess.

Every command goes through :func:`run`: an argv tuple (never a shell), an explicit working
directory and environment, a timeout that kills the whole process group, and output read
line by line as it is produced so that it can stream into the Airflow task log.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from clone.errors import CommandError

log = logging.getLogger(__name__)

#: Called with (stream name, line without newline). Return True to ask the runner to stop
#: the process (for example when a token budget is spent).
LineHandler = Callable[[str, str], bool | None]

_KILL_GRACE_SECONDS = 5.0
#: Process groups started by this process and still running: killed when it exits or is killed.
_LIVE: dict[int, subprocess.Popen] = {}
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: have the kernel SIGKILL the child when the task process dies, even by SIGKILL."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except OSError:
        pass


def kill_running() -> None:
    """Kill every process group this process started that is still running (task kill, exit)."""
    for proc in list(_LIVE.values()):
        _kill_group(proc)
    _LIVE.clear()


atexit.register(kill_running)


@dataclasses.dataclass(frozen=True)
class CommandResult:
    """What a finished command did."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    stopped: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.stopped

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of stdout and stderr together, for error messages."""
        text = "\n".join(part for part in (self.stdout.rstrip(), self.stderr.rstrip()) if part)
        return "\n".join(text.splitlines()[-lines:])


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after a grace period."""
    for sig, wait in ((signal.SIGTERM, _KILL_GRACE_SECONDS), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        if wait is None:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; make sure no child it left behind survives either.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        break


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | str,
    env: Mapping[str, str],
    timeout: float,
    stdin: str | None = None,
    on_line: LineHandler | None = None,
    check: bool = True,
    max_capture_lines: int | None = None,
    error_class: type[CommandError] = CommandError,
) -> CommandResult:
    """Run ``argv`` in ``cwd`` with exactly ``env``, at most ``timeout`` seconds.

    ``stdin`` is written to the process (``None`` means ``/dev/null``). Each output line is
    handed to ``on_line`` as soon as it is read. ``max_capture_lines`` bounds how much output
    is kept in memory (the tail is kept). With ``check``, a non-zero exit or a timeout raises
    ``error_class`` carrying the command, its exit code and its output.
    """
    argv = tuple(os.fspath(part) for part in argv)
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # own process group: a timeout kills the whole tree
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    except OSError as e:
        raise error_class(f"cannot start {argv[0]!r} in {cwd}: {e}", argv=argv) from e
    _LIVE[proc.pid] = proc
    try:
        return _supervise(proc, argv, cwd, timeout, stdin, on_line, check, max_capture_lines, error_class, started)
    finally:
        _LIVE.pop(proc.pid, None)


def _supervise(proc: subprocess.Popen, argv: tuple[str, ...], cwd: Path | str, timeout: float, stdin: str | None,
               on_line: LineHandler | None, check: bool, max_capture_lines: int | None,
               error_class: type[CommandError], started: float) -> CommandResult:
    """Stream ``proc``'s output, enforce the timeout and stop requests, and build the result."""

    buffers = {"stdout": deque(maxlen=max_capture_lines), "stderr": deque(maxlen=max_capture_lines)}
    stop_requested = threading.Event()
    handler_lock = threading.Lock()

    def pump(name: str, stream) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            buffers[name].append(line)
            if on_line is not None:
                with handler_lock:
                    if on_line(name, line) and not stop_requested.is_set():
                        stop_requested.set()
                        with contextlib.suppress(ProcessLookupError, PermissionError):
                            os.killpg(proc.pid, signal.SIGTERM)  # at once; the main loop finishes the job
        stream.close()

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            proc.stdin.write(stdin.encode())
            proc.stdin.close()

    threads = [threading.Thread(target=pump, args=(n, getattr(proc, n)), daemon=True) for n in buffers]
    if stdin is not None:
        threads.append(threading.Thread(target=feed, daemon=True))
    for thread in threads:
        thread.start()

    deadline = started + timeout
    timed_out = stopped = False
    while proc.poll() is None:
        if stop_requested.is_set():
            stopped = True
            _kill_group(proc)
        elif time.monotonic() >= deadline:
            timed_out = True
            _kill_group(proc)
        else:
            try:  # returns as soon as the process exits: no polling delay on short commands
                proc.wait(timeout=min(0.1, max(0.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                pass
    stopped = stopped or stop_requested.is_set()  # the pump may have signalled it before the loop looked
    if not (timed_out or stopped):
        # The leader exited; children still holding the pipes would keep readers alive.
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in threads):
            timed_out = True
            _kill_group(proc)
    for thread in threads:
        thread.join(timeout=_KILL_GRACE_SECONDS)

    result = CommandResult(
        argv=argv,
        returncode=proc.returncode,
        stdout="\n".join(buffers["stdout"]),
        stderr="\n".join(buffers["stderr"]),
        duration=time.monotonic() - started,
        timed_out=timed_out,
        stopped=stopped,
    )
    if check and not result.ok:
        if timed_out:
            what = f"timed out after {timeout:.0f}s and was killed"
        elif stopped:
            what = "was stopped"
        else:
            what = f"exited with code {result.returncode}"
        raise error_class(
            f"command {' '.join(argv)!r} in {cwd} {what}:\n{result.tail()}",
            argv=argv,
            returncode=result.returncode,
            output=result.tail(200),
            timed_out=timed_out,
        )
    return result
