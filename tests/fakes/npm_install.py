"""Installing a pinned npm package into a cache folder for tests: once, under a lock, with npm's
output in the error when it fails."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

INSTALL_TIMEOUT_S = 900


def run_logged(cmd: list[str], error: type[Exception], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` with stdout and stderr together; a timeout raises ``error`` with the output so far."""
    try:
        return subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=INSTALL_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        out = exc.output or ""
        if isinstance(out, bytes):
            out = out.decode("utf-8", "replace")
        raise error(f"`{' '.join(cmd)}` timed out after {INSTALL_TIMEOUT_S} s. Output:\n{out}") from exc


def install_package(spec: str, cache_dir: Path, *, is_installed: Callable[[Path], bool],
                    error: type[Exception], expected: str,
                    repair: Callable[[Path], str] | None = None) -> None:
    """``npm install spec`` into ``cache_dir`` unless ``is_installed(cache_dir)``.

    Idempotent and safe to call from several processes at once (an ``fcntl`` lock on
    ``<parent>/.<name>.lock``). ``repair`` may finish an install npm left incomplete (it returns
    extra output for the error message). Raises ``error`` naming ``expected`` and npm's output.
    """
    if is_installed(cache_dir):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise error(f"npm is not on PATH; cannot install {spec} into {cache_dir}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir.parent / f".{cache_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits here, then finds the install done
        try:
            if is_installed(cache_dir):
                return
            started = time.monotonic()
            cmd = [npm, "install", "--prefix", str(cache_dir), "--no-audit", "--no-fund", "--no-save",
                   "--loglevel=warn", spec]
            proc = run_logged(cmd, error)
            output = proc.stdout
            if proc.returncode == 0 and not is_installed(cache_dir) and repair is not None:
                output += repair(cache_dir)
            if proc.returncode != 0 or not is_installed(cache_dir):
                raise error(f"`{' '.join(cmd)}` failed (exit {proc.returncode}, {time.monotonic() - started:.0f} s); "
                            f"expected {expected}. npm output:\n{output}")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
