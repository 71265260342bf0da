"""tests/browser.py: the system Chromium is found, or the failure says how to install it."""

from __future__ import annotations

import pytest

from tests import browser


def test_an_installed_chromium_is_used_as_it_is(tmp_path, monkeypatch):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setattr(browser, "CHROMIUM", fake)
    monkeypatch.setattr(browser, "_apt", lambda *args: pytest.fail(f"apt-get {args} must not run"))
    assert browser.ensure_chromium() == fake


def test_a_missing_chromium_without_root_fails_saying_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(browser, "CHROMIUM", tmp_path / "missing" / "chromium")
    monkeypatch.setattr(browser.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(browser, "_apt", lambda *args: pytest.fail(f"apt-get {args} must not run"))
    with pytest.raises(pytest.fail.Exception) as failed:
        browser.ensure_chromium()
    message = str(failed.value)
    assert str(tmp_path / "missing" / "chromium") in message
    assert "sudo apt-get update && sudo apt-get install -y chromium" in message

