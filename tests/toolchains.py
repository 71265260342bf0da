"""Toolchains the ecosystem tests need, installed from Debian's packages when missing (as tests/browser.py
installs Chromium): the suite installs what it needs, as root on a system with apt-get, and otherwise
fails saying what to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

APT_TIMEOUT = 600  # seconds for each of apt-get update and apt-get install (golang-go is ~100 MB)


def _apt(package: str, *args: str) -> None:
    command = ["apt-get", "-o", f"DPkg::Lock::Timeout={APT_TIMEOUT}", *args]  # wait for another apt run
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        result = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=APT_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"`{' '.join(command)}` did not finish in {APT_TIMEOUT} s while installing {package}:\n"
                    f"{(e.stdout or b'')[-3000:]!r}")
    if result.returncode != 0:
        pytest.fail(f"`{' '.join(command)}` exited {result.returncode} while installing {package}:\n"
                    f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def ensure_program(program: str, package: str) -> str:
    """The path of ``program``, installing Debian's ``package`` first when it is missing (root only)."""
    found = shutil.which(program) or (f"/usr/bin/{program}" if os.access(f"/usr/bin/{program}", os.X_OK) else None)
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"these tests need `{program}`; it is missing and they can install it only as root on a "
                    f"system with apt-get. Install it with `sudo apt-get update && sudo apt-get install -y "
                    f"{package}` and run the tests again.")
    _apt(package, "update")
    _apt(package, "install", "-y", "--no-install-recommends", package)
    found = shutil.which(program) or (f"/usr/bin/{program}" if os.access(f"/usr/bin/{program}", os.X_OK) else None)
    if not found:
        pytest.fail(f"apt-get installed {package} but `{program}` is still missing")
    return found
