"""The baseline verdict and the gated re-check (:func:`clone.checks.baseline.recheck`) on real git repos."""

from __future__ import annotations

import os
from pathlib import Path

from clone.checks import verify
from clone.util.git import Git
from tests.repos import git

ENV = {"PATH": os.environ["PATH"]}
# lint is red when lint-broken.txt exists; test is red when feature.txt and blocker.txt are both there.
MAKEFILE = ("lint:\n\t@test ! -e lint-broken.txt\n"
            "test:\n\t@if [ -e feature.txt ] && [ -e blocker.txt ]; then echo 'feature vs blocker'; exit 1; fi\n")


def repo(tmp_path: Path) -> tuple[Path, str]:
    """``<ws>/repos/app`` on branch ``work`` with ``feature.txt`` on top of ``main``; returns (path, main's sha)."""
    workdir = tmp_path / "ws" / "repos" / "app"
    workdir.mkdir(parents=True)
    git(workdir, "init", "-q", "-b", "main")
    (workdir / "Makefile").write_text(MAKEFILE)
    git(workdir, "add", "-A")
    git(workdir, "commit", "-q", "-m", "initial")
    git(workdir, "checkout", "-q", "-b", "work")
    (workdir / "feature.txt").write_text("f\n")
    git(workdir, "add", "-A")
    git(workdir, "commit", "-q", "-m", "feature")
    return workdir, git(workdir, "rev-parse", "main")


def move_main(workdir: Path, name: str) -> str:
    """A commit on main adding ``name``, then ``work`` rebased onto it; returns main's new sha."""
    git(workdir, "checkout", "-q", "main")
    (workdir / name).write_text("x\n")
    git(workdir, "add", "-A")
    git(workdir, "commit", "-q", "-m", f"add {name}")
    git(workdir, "checkout", "-q", "work")
    git(workdir, "rebase", "-q", "main")
    return git(workdir, "rev-parse", "main")


def test_red_on_the_new_target_is_pre_existing(tmp_path):
    workdir, _ = repo(tmp_path)
    upstream = move_main(workdir, "lint-broken.txt")
    head = git(workdir, "rev-parse", "HEAD")
    verdict, results = verify.recheck(Git(workdir), verify.detect_checks(workdir), upstream,
                                      timeout_seconds=30, env=ENV)
    assert [(r.name, r.ok) for r in results] == [("lint", False), ("test", True)]
    assert not verdict.regressions and verdict.label == "passed (pre-existing red: lint)"
    # Back on the work branch, at the same commit, with a clean tree.
    assert git(workdir, "rev-parse", "HEAD") == head
    assert git(workdir, "symbolic-ref", "--short", "HEAD") == "work"
    assert git(workdir, "status", "--porcelain") == ""
    assert list((tmp_path / "ws" / "envs" / "app" / "baseline").glob(f"{upstream}-*.json"))


def test_green_on_the_new_target_and_red_after_the_rebase_is_a_regression(tmp_path):
    workdir, _ = repo(tmp_path)
    checks = verify.detect_checks(workdir)
    assert all(r.ok for r in verify.run_checks(workdir, checks, timeout_seconds=30, env=ENV))  # the agent's work
    upstream = move_main(workdir, "blocker.txt")
    verdict, _ = verify.recheck(Git(workdir), checks, upstream, timeout_seconds=30, env=ENV)
    assert [r.name for r in verdict.regressions] == ["test"] and verdict.label == "failed"
    assert "feature vs blocker" in verdict.regressions[0].output_tail
