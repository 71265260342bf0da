"""Toolchains the ecosystem tests need, installed from Debian's packages when missing (as tests/browser.py
installs Chromium): the suite installs what it needs, as root on a system with apt-get, and otherwise
fails saying what to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
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


TOOLS = ("poetry", "tox", "pre-commit", "nox")
TOOL_PINS = ("poetry==2.1.3", "tox==4.23.2", "pre-commit==4.0.1", "nox==2024.10.9")


class Missing(Exception):
    """A tool a fixture needs is not available here."""


def find_uv() -> str:
    for candidate in (shutil.which("uv"), ROOT / ".venv" / "bin" / "uv", ROOT / ".cache" / "uv-venv" / "bin" / "uv"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise Missing("uv is neither on PATH nor bootstrapped by `make install` (.cache/uv-venv)")


def tools_path() -> str:
    """PATH with uv and poetry, tox, pre-commit and nox (one tools venv under .cache/, installed from PyPI)
    in front. Only the tools are linked: the tools venv's python never shadows a repo's."""
    uv = find_uv()
    tools = ROOT / ".cache" / "verify-tools"
    if not all((tools / "bin" / t).is_file() for t in TOOLS):
        subprocess.run([uv, "venv", "-q", "--allow-existing", str(tools)], check=True, timeout=120)
        subprocess.run([uv, "pip", "install", "-q", "--python", str(tools / "bin" / "python"), *TOOL_PINS],
                       check=True, timeout=600)
    only = ROOT / ".cache" / "verify-tools-bin"
    only.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        if not (only / tool).exists():
            (only / tool).symlink_to(tools / "bin" / tool)
    return os.pathsep.join((str(Path(uv).parent), str(only), os.environ.get("PATH", "")))
