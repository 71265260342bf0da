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
#: After the leader exits, how long its output may keep draining before the rest of its process
#: group (a daemon it left behind holding stdout) is killed. The result is the leader's.
_DRAIN_SECONDS = 2.0
#: Longest output line handed on, in bytes; the rest of a longer line is read and dropped.
MAX_LINE_BYTES = 1 << 20
#: Process groups started by this process and still running: killed when it exits or is killed.
_LIVE: dict[int, subprocess.Popen] = {}
_PR_SET_PDEATHSIG = 1
#: (on_start, on_end) pairs called with each new process group's id: see :func:`watching`.
_WATCHERS: list[tuple[Callable[[int], None], Callable[[int], None]]] = []


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


@contextlib.contextmanager
def watching(on_start: Callable[[int], None], on_end: Callable[[int], None]):
    """While the block runs, call ``on_start(pgid)`` when a command's process group starts and
    ``on_end(pgid)`` when its command returns (the lease records them, so that a later run can kill
    what a killed task left behind). A watcher that raises is logged, never fails the command."""
    pair = (on_start, on_end)
    _WATCHERS.append(pair)
    try:
        yield
    finally:
        _WATCHERS.remove(pair)


def _notify(index: int, pgid: int) -> None:
    for pair in list(_WATCHERS):
        try:
            pair[index](pgid)
        except Exception:  # noqa: BLE001 - bookkeeping must never stop a command
            log.exception("process group watcher failed for group %d", pgid)


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
    #: What the ``on_line`` handler raised (``"TypeError: ..."``), which stopped the command.
    handler_error: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.stopped and not self.handler_error

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


def _lines(stream):
    """Decoded lines of ``stream`` (invalid UTF-8 replaced), each cut at MAX_LINE_BYTES."""
    while True:
        raw = stream.readline(MAX_LINE_BYTES)
        if not raw:
            return
        if len(raw) == MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass  # drop the rest of an overlong line without holding it in memory
        yield raw.decode("utf-8", errors="replace").rstrip("\r\n")


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
    pass_fds: Sequence[int] = (),
) -> CommandResult:
    """Run ``argv`` in ``cwd`` with exactly ``env``, at most ``timeout`` seconds.

    ``stdin`` is written to the process (``None`` means ``/dev/null``). Each output line is
    handed to ``on_line`` as soon as it is read. ``max_capture_lines`` bounds how much output
    is kept in memory (the tail is kept). With ``check``, a non-zero exit or a timeout raises
    ``error_class`` carrying the command, its exit code and its output. ``pass_fds``: open file
    descriptors the command inherits (a pipe holding a credential, :mod:`clone.util.git_auth`).
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
            pass_fds=tuple(pass_fds),
            start_new_session=True,  # own process group: a timeout kills the whole tree
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    except OSError as e:
        raise error_class(f"cannot start {argv[0]!r} in {cwd}: {e}", argv=argv) from e
    _LIVE[proc.pid] = proc
    _notify(0, proc.pid)
    try:
        return _supervise(proc, argv, cwd, timeout, stdin, on_line, check, max_capture_lines, error_class, started)
    finally:
        _LIVE.pop(proc.pid, None)
        _notify(1, proc.pid)


def _supervise(proc: subprocess.Popen, argv: tuple[str, ...], cwd: Path | str, timeout: float, stdin: str | None,
               on_line: LineHandler | None, check: bool, max_capture_lines: int | None,
               error_class: type[CommandError], started: float) -> CommandResult:
    """Stream ``proc``'s output, enforce the timeout and stop requests, and build the result."""

    buffers = {"stdout": deque(maxlen=max_capture_lines), "stderr": deque(maxlen=max_capture_lines)}
    stop_requested = threading.Event()
    handler_lock = threading.Lock()
    handler_errors: list[str] = []

    def request_stop() -> None:
        if not stop_requested.is_set():
            stop_requested.set()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)  # at once; the main loop finishes the job

    def handle(name: str, line: str, number: int) -> None:
        if on_line is None or handler_errors:
            return
        with handler_lock:
            try:
                if on_line(name, line):
                    request_stop()
            except Exception as e:  # a handler bug must stop the command, never the draining
                log.exception("output handler failed on %s line %d of %s", name, number, argv[0])
                handler_errors.append(f"{type(e).__name__}: {e} (on {name} line {number}: {line[:200]!r})")
                request_stop()

    def pump(name: str, stream) -> None:
        number = 0
        for line in _lines(stream):
            number += 1
            buffers[name].append(line)
            handle(name, line, number)
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
    # The leader exited. What it left in its group (a daemon holding stdout) would keep the pipes
    # open: give the output a moment to drain, then kill the group. The leader's exit code stands.
    drain_until = time.monotonic() + _DRAIN_SECONDS
    for thread in threads:
        thread.join(timeout=max(0.0, drain_until - time.monotonic()))
    if any(t.is_alive() for t in threads):
        log.info("%s exited but its process group still holds its output; killing the group", argv[0])
        _kill_group(proc)
    for thread in threads:
        thread.join(timeout=_KILL_GRACE_SECONDS)
    if any(t.is_alive() for t in threads):  # something left the group (setsid) and holds the pipe
        log.warning("a process outside %s's group still holds its output; not waiting for it", argv[0])
    handler_error = handler_errors[0] if handler_errors else ""
    stopped = stopped and not handler_error

    result = CommandResult(
        argv=argv,
        returncode=proc.returncode,
        stdout="\n".join(buffers["stdout"]),
        stderr="\n".join(buffers["stderr"]),
        duration=time.monotonic() - started,
        timed_out=timed_out,
        stopped=stopped,
        handler_error=handler_error,
    )
    if check and not result.ok:
        if handler_error:
            what = f"was stopped because its output handler failed: {handler_error}"
        elif timed_out:
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
