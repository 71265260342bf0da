"""Clone's git reads only config Clone controls: a planted ~/.gitconfig, system config or GIT_* variable
cannot run a command at Clone's own ``git add`` or turn TLS verification off."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from clone.errors import ConfigError
from clone.util.git import Git, Identity, git_env
from tests.repos import git


def _repo(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / ".gitattributes").write_text("*.txt filter=evil diff=evil\n")
    (work / "a.txt").write_text("one\n")
    git(work, "add", "-A")
    git(work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "initial")
    return work


def test_planted_global_config_filter_and_textconv_never_run(tmp_path, monkeypatch):
    work = _repo(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    marker = tmp_path / "filter-ran"
    # What an unsandboxed agent could once write: a clean filter and a textconv in ~/.gitconfig.
    (home / ".gitconfig").write_text(f"[filter \"evil\"]\n\tclean = touch {marker}; cat\n"
                                     f"[diff \"evil\"]\n\ttextconv = touch {marker}; cat\n"
                                     f"[core]\n\thooksPath = {tmp_path}/hooks\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_SSL_NO_VERIFY", "1")
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", f"'filter.evil.clean'='touch {marker}'")
    repo = Git(work, Identity("bot", "bot@clone.invalid"))
    # The same config does run the filter for a plain git: the attack is real.
    subprocess.run(["git", "-C", str(work), "add", "--dry-run", "."], env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
                   check=True, capture_output=True)
    (work / "a.txt").write_text("two\n")
    subprocess.run(["git", "-C", str(work), "diff", "--stat"], env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
                   check=True, capture_output=True)
    assert marker.exists(), "the planted filter should run for a git that reads ~/.gitconfig"
    marker.unlink()
    repo.snapshot_tree()
    repo.commit_index("change")
    assert repo.changed_files("HEAD~1") == ["a.txt"]
    assert not marker.exists(), "Clone's git ran a filter or textconv from ~/.gitconfig"
    env = git_env()
    assert "GIT_SSL_NO_VERIFY" not in env and "GIT_CONFIG_PARAMETERS" not in env
    assert env["GIT_CONFIG_NOSYSTEM"] == "1"
    # Hooks are off per command, not in the global config a local remote's receive-pack reads too
    # (its update hook, its branch protection, must still run: tests/work/test_push.py).
    assert "hooksPath" not in Path(env["GIT_CONFIG_GLOBAL"]).read_text()
    assert repo.out("config", "--get", "core.hooksPath") == "/dev/null"


def test_user_git_config_is_included_only_through_clone_git_config(tmp_path, monkeypatch):
    work = _repo(tmp_path)
    mine = tmp_path / "my-git-settings"
    mine.write_text("[url \"https://example.invalid/\"]\n\tinsteadOf = gh:\n[core]\n\thooksPath = /tmp/mine\n")
    monkeypatch.setenv("CLONE_GIT_CONFIG", str(mine))
    repo = Git(work)
    assert repo.out("config", "--get", "url.https://example.invalid/.insteadof") == "gh:"
    assert repo.out("config", "--get", "core.hooksPath") == "/dev/null"  # Clone's own settings still win
    monkeypatch.setenv("CLONE_GIT_CONFIG", "relative/file")
    with pytest.raises(ConfigError, match="CLONE_GIT_CONFIG must be an absolute path"):
        Git(work)


def test_outside_values_starting_with_a_dash_are_values(tmp_path):
    work = _repo(tmp_path)
    repo = Git(work)
    repo.run("config", "--local", "--", "clone.idea", "-rf")
    assert repo.out("config", "--local", "--get", "clone.idea") == "-rf"
    repo.run("remote", "add", "--", "origin", "--upload-pack=touch /tmp/x")
    assert repo.out("remote", "get-url", "origin") == "--upload-pack=touch /tmp/x"
