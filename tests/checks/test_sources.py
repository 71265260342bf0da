"""Check sources that need no toolchain to detect: noxfile.py parsing and the missing-ruff warning."""

from __future__ import annotations

import logging
from pathlib import Path

from clone.checks import repo_setup, verify
from clone.checks.declared import nox_sessions

NOXFILE = '''\
import nox
from nox import session


@nox.session(python=["3.10", "3.11"])
def tests(session):
    session.run("pytest")


@session(name="type-check")
def mypy(session):
    session.run("mypy", ".")


@nox.session
def blacken(session):  # rewrites files
    session.run("black", ".")


@nox.session(name="docs")
def build_docs(session):
    session.run("sphinx-build", "docs", "out")


@nox.parametrize("x", [1])
def not_a_session(x):
    pass


def helper():
    pass
'''


def repo(tmp_path: Path, files: dict[str, str]) -> Path:
    workdir = tmp_path / "ws" / "repos" / "app"
    for rel, text in files.items():
        (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
        (workdir / rel).write_text(text)
    return workdir


def test_nox_sessions_are_read_without_running_the_noxfile(tmp_path):
    workdir = repo(tmp_path, {"noxfile.py": "import sys\nsys.exit('never imported')\n" + NOXFILE})
    assert nox_sessions(workdir) == {"test": ["tests"], "lint": ["type-check"]}
    env = tmp_path / "ws" / "envs" / "app" / "nox"
    flags = ("--envdir", str(env), "--no-error-on-missing-interpreters")
    assert [(c.name, c.argv, c.source) for c in verify.detect_checks(workdir)] == [
        ("lint", ("nox", "-R", *flags, "-s", "type-check"), "noxfile.py session(s) type-check"),
        ("test", ("nox", "-R", *flags, "-s", "tests"), "noxfile.py session(s) tests"),
    ]
    steps = repo_setup.steps_for(None, workdir, path="")
    assert [s.argv for s in steps][-1] == ("nox", "--install-only", *flags, "-s", "tests", "type-check")


def test_a_broken_noxfile_is_ignored_not_fatal(tmp_path, caplog):
    workdir = repo(tmp_path, {"noxfile.py": "def (:\n"})
    with caplog.at_level(logging.WARNING):
        assert verify.detect_checks(workdir) == []
    assert "noxfile.py" in caplog.text


def test_tox_wins_the_test_kind_and_nox_keeps_lint(tmp_path):
    workdir = repo(tmp_path, {"noxfile.py": NOXFILE, "tox.ini": "[tox]\n[testenv]\ncommands = pytest\n"})
    assert [(c.name, c.argv[0]) for c in verify.detect_checks(workdir)] == [("lint", "nox"), ("test", "tox")]


def test_a_ruff_config_without_ruff_is_a_warning_naming_it(tmp_path, monkeypatch, caplog):
    workdir = repo(tmp_path, {"ruff.toml": "line-length = 100\n"})
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with caplog.at_level(logging.WARNING):
        assert verify.detect_checks(workdir) == []
    assert "the tool 'ruff' is missing" in caplog.text
    # Installed into the repo's env by setup (a dev dependency): then it is the lint check.
    ruff = tmp_path / "ws" / "envs" / "app" / "venv" / "bin" / "ruff"
    ruff.parent.mkdir(parents=True)
    ruff.write_text("#!/bin/sh\n")
    assert [c.argv for c in verify.detect_checks(workdir)] == [("ruff", "check", ".")]
