"""include/scripts/discover_active_repos.py: discovery alone writes repos.yaml and keeps what the user set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from clone.fleet.repos_file import load_fleet
from tests.repos import git
from tests.fleet.test_discover import OLD, make

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "include" / "scripts" / "discover_active_repos.py"


def run_script(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CLONE_", "GIT_"))}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**base, **(env or {})})


def test_writes_repos_yaml_then_keeps_user_keys_and_comments(tmp_path):
    code = tmp_path / "code"
    web = make(code / "web")
    api = make(code / "team" / "api")
    make(code / "archive", date=OLD)
    repos_file = tmp_path / "repos.yaml"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    first = run_script(str(code), "--repos-file", str(repos_file), cwd=elsewhere)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        f"2 active checkout(s) under {code} (a commit in the last 14 day(s))",
        f"added {api}",
        f"added {web}",
        f"{repos_file}: 2 added, 2 repo(s) in total (2 enabled)",
    ]
    assert repos_file.read_text() == f"repos:\n  - path: {api}\n  - path: {web}\n"

    # The user edits the file: a comment, keys on an entry, an entry of their own.
    repos_file.write_text(f"""# my fleet
repos:
  - path: {api}
    enabled: false   # too risky
    branch: develop
  - path: {web}
    github: acme/web
""")
    fresh = make(code / "fresh")
    second = run_script(str(code), "--repos-file", str(repos_file), cwd=elsewhere)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[1:] == [
        f"added {fresh}",
        f"{repos_file}: 1 added, 3 repo(s) in total (2 enabled)",
    ]
    assert repos_file.read_text() == f"""# my fleet
repos:
  - path: {api}
    enabled: false   # too risky
    branch: develop
  - path: {web}
    github: acme/web
  - path: {fresh}
"""
    # A wider window finds the stale checkout too; a third run with nothing new changes nothing.
    wider = run_script(str(code), "--days", "100000", "--repos-file", str(repos_file), cwd=elsewhere)
    assert wider.stdout.splitlines()[1] == f"added {code / 'archive'}"
    before = repos_file.read_text()
    again = run_script(str(code), "--days", "100000", "--repos-file", str(repos_file), cwd=elsewhere)
    assert again.stdout.splitlines()[-1] == f"{repos_file}: 0 added, 4 repo(s) in total (3 enabled)"
    assert repos_file.read_text() == before


def test_defaults_come_from_the_environment(tmp_path):
    code = tmp_path / "code"
    make(code / "one")
    make(code / "ancient", date="2000-01-01T00:00:00+00:00")
    repos_file = tmp_path / "fleet.yaml"
    result = run_script(cwd=tmp_path, env={"CLONE_CODE_ROOT": str(code), "CLONE_REPOS_FILE": str(repos_file),
                                           "CLONE_ACTIVE_DAYS": "3"})
    assert result.returncode == 0, result.stderr
    assert "(a commit in the last 3 day(s))" in result.stdout
    entries, problems = load_fleet(repos_file)
    assert [e.name for e in entries] == ["one"] and problems == []


def test_bad_entries_are_kept_and_reported(tmp_path):
    code = tmp_path / "code"
    one = make(code / "one")
    repos_file = tmp_path / "repos.yaml"
    repos_file.write_text("repos:\n  - path: relative/dir\n")
    result = run_script(str(code), "--repos-file", str(repos_file), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "entry 1 (relative/dir): field 'path' must be absolute" in result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"{repos_file}: 1 added, 1 repo(s) in total (1 enabled), 1 bad entry")
    assert repos_file.read_text() == f"repos:\n  - path: relative/dir\n  - path: {one}\n"


def test_broken_repos_yaml_or_missing_root_exit_non_zero(tmp_path):
    code = tmp_path / "code"
    make(code / "one")
    repos_file = tmp_path / "repos.yaml"
    repos_file.write_text("repos: [\n")
    broken = run_script(str(code), "--repos-file", str(repos_file), cwd=tmp_path)
    assert broken.returncode == 1
    assert f"discover_active_repos: {repos_file}: not valid YAML" in broken.stderr
    assert repos_file.read_text() == "repos: [\n"  # never overwritten

    missing = run_script(str(tmp_path / "nope"), "--repos-file", str(repos_file), cwd=tmp_path)
    assert missing.returncode == 1 and "is not a directory" in missing.stderr


def test_broken_checkouts_are_warned_about_not_fatal(tmp_path):
    code = tmp_path / "code"
    make(code / "good")
    (code / "broken" / ".git").mkdir(parents=True)
    git_file = code / "dangling"
    git_file.mkdir()
    (git_file / ".git").write_text("gitdir: ../nowhere\n")
    repos_file = tmp_path / "repos.yaml"
    result = run_script(str(code), "--repos-file", str(repos_file), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"skipping {code / 'broken'}: no HEAD" in result.stderr
    assert f"skipping {git_file}: no HEAD" in result.stderr
    assert [e.name for e in load_fleet(repos_file)[0]] == ["good"]
    git(code / "good", "status")  # the checkout itself is untouched and fine
