"""A real browser for UI tests: Playwright driving Debian's ``/usr/bin/chromium``.

Playwright never downloads a browser here: it is pointed at the system Chromium with
``executable_path``. The session fixture :func:`chromium` installs Debian's ``chromium`` package
with apt-get when it is missing and the tests run as root, and fails with what to do otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
#: Headless, no sandbox (root in a container), and nothing that reaches out to the network by itself.
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync")
APT_TIMEOUT = 300  # seconds for each of apt-get update and apt-get install


def _apt(*args: str) -> None:
    command = ["apt-get", "-o", f"DPkg::Lock::Timeout={APT_TIMEOUT}", *args]  # wait for another apt run
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        result = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=APT_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"`{' '.join(command)}` did not finish in {APT_TIMEOUT} s while installing {CHROMIUM}:\n"
                    f"{(e.stdout or b'')[-3000:]!r}")
    if result.returncode != 0:
        pytest.fail(f"`{' '.join(command)}` exited {result.returncode} while installing {CHROMIUM}:\n"
                    f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def ensure_chromium() -> Path:
    """``/usr/bin/chromium``, installed from Debian's packages first if missing (root only)."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"the browser tests need Debian's Chromium at {CHROMIUM}; it is missing and these tests "
                    "can install it only as root on a system with apt-get. Install it with "
                    "`sudo apt-get update && sudo apt-get install -y chromium` and run the tests again.")
    _apt("update")
    _apt("install", "-y", "--no-install-recommends", "chromium")
    if not CHROMIUM.is_file():
        pytest.fail(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return CHROMIUM


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The path of the system Chromium, installed on first use when possible."""
    return ensure_chromium()


def launch(playwright, executable: Path):
    """A headless Chromium browser (Playwright ``Browser``) from ``executable``."""
    return playwright.chromium.launch(executable_path=str(executable), args=list(CHROMIUM_ARGS),
                                      headless=True)


def log_in(page, base: str, password: str) -> None:
    """Log in to the Airflow UI at ``base`` as admin (simple auth manager's login page)."""
    page.goto(f"{base}/")
    page.wait_for_url("**/auth/login**")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)


def open_trigger_form(page, base: str, dag_id: str):
    """The trigger dialog of a freshly loaded DAG page (every field at its default), and its Trigger button,
    asserted enabled (a field the form takes for required and empty disables it)."""
    from playwright.sync_api import expect

    page.goto(f"{base}/dags/{dag_id}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.locator("[role=dialog][data-state=open]")
    expect(dialog.get_by_text(f"Trigger Dag - {dag_id}")).to_be_visible(timeout=30_000)
    expect(dialog.get_by_text("Run Parameters")).to_be_visible()
    submit = dialog.get_by_role("button", name="Trigger").last
    expect(submit, "the Trigger button is disabled with every default untouched (a field the form takes "
                   "for required and empty)").to_be_enabled()
    return dialog, submit
