"""Fleet reports on real repos with known commits: table, order, counts, --since, bad entries, the CLI."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clone.errors import ConfigError
from clone.fleet.report import fleet_report, render_commits, render_counts
from tests.repos import git

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "include" / "scripts" / "fleet_report.py"
UTC = dt.timezone.utc
NO_REMOTE_SOURCES = ["", "read:"] + [f"  {name:<12}  checkout HEAD (no remote 'origin')"
                                     for name in ("alpha", "beta-service", "empty", "gamma")]


def commit(repo: Path, when: str, author: str, subject: str) -> str:
    """A commit in ``repo`` authored and committed by ``author`` at ``when``; returns its id."""
    if not (repo / ".git").exists():
        repo.mkdir(parents=True)
        git(repo, "init", "--quiet", "-b", "main")
    (repo / "log.txt").open("a").write(subject + "\n")
    git(repo, "add", "-A")
    name, email = author, f"{author.split()[0].lower()}@example.com"
    git(repo, "commit", "--quiet", "-m", subject, env={
        "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email, "GIT_COMMITTER_DATE": when})
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def fleet(tmp_path):
    """Three repos with commits on 2026-11-24 (UTC), an old one, an empty, a disabled one, a bad entry."""
    code = tmp_path / "code"
    ids = {
        "a1": commit(code / "alpha", "2026-11-24T08:00:00+00:00", "Ann Lee", "Add the parser"),
        "b1": commit(code / "beta", "2026-11-24T09:30:00+00:00", "Bob", "Fix | pipes in subjects"),
        "a2": commit(code / "alpha", "2026-11-24T10:15:00+02:00", "Bob", "Speed up the parser"),  # 08:15 UTC
        "a3": commit(code / "alpha", "2026-11-24T11:00:00+00:00", "Ann Lee", "Release 1.0"),
        "g1": commit(code / "gamma", "2020-01-01T00:00:00+00:00", "Cy", "Ancient history"),
        "d1": commit(code / "delta", "2026-11-24T10:00:00+00:00", "Dee", "Disabled, never reported"),
    }
    (code / "empty").mkdir()
    git(code / "empty", "init", "--quiet")
    repos_file = tmp_path / "repos.yaml"
    repos_file.write_text(f"""repos:
  - path: {code / 'alpha'}
  - path: {code / 'beta'}
    name: beta-service
  - path: {code / 'gamma'}
  - path: {code / 'empty'}
  - path: {code / 'delta'}
    enabled: false
  - path: relative/path
  - path: {code / 'missing'}
""")
    return repos_file, ids


def test_commits_newest_first_as_a_table(fleet):
    repos_file, ids = fleet
    report = fleet_report(repos_file, "2026-11-24T00:00:00Z")
    assert render_commits(report, UTC).splitlines() == [
        "time             | repo         | hash         | author  | subject",
        f"2026-11-24 11:00 | alpha        | {ids['a3'][:12]} | Ann Lee | Release 1.0",
        f"2026-11-24 09:30 | beta-service | {ids['b1'][:12]} | Bob     | Fix | pipes in subjects",
        f"2026-11-24 08:15 | alpha        | {ids['a2'][:12]} | Bob     | Speed up the parser",
        f"2026-11-24 08:00 | alpha        | {ids['a1'][:12]} | Ann Lee | Add the parser",
        "",
        "4 commit(s) in 2 of 4 repo(s) since 2026-11-24T00:00:00Z",
        *NO_REMOTE_SOURCES,
    ]
    assert [c.sha for c in report.commits] == [ids["a3"], ids["b1"], ids["a2"], ids["a1"]]


def test_counts_per_repo_include_idle_repos(fleet):
    repos_file, _ = fleet
    report = fleet_report(repos_file, "2026-11-24T00:00:00Z")
    assert report.counts == {"alpha": 3, "beta-service": 1, "empty": 0, "gamma": 0}
    assert render_counts(report).splitlines() == [
        "repo         | commits",
        "alpha        |       3",
        "beta-service |       1",
        "empty        |       0",
        "gamma        |       0",
        "total        |       4",
        "since 2026-11-24T00:00:00Z",
        *NO_REMOTE_SOURCES,
    ]


@pytest.mark.parametrize(("since", "expected"), [
    ("2026-11-24T08:10:00Z", ["a3", "b1", "a2"]),
    ("2026-11-24 10:00:00 +0000", ["a3"]),
    ("2019-12-31", ["a3", "b1", "a2", "a1", "g1"]),
    ("2026-11-25", []),
])
def test_since_is_what_git_accepts(fleet, since, expected):
    repos_file, ids = fleet
    report = fleet_report(repos_file, since)
    assert [c.sha for c in report.commits] == [ids[key] for key in expected]


def test_bad_entries_are_reported_by_entry_and_skipped(fleet):
    repos_file, _ = fleet
    report = fleet_report(repos_file, "2026-11-24T00:00:00Z")
    assert len(report.problems) == 2
    assert "entry 6 (relative/path): field 'path' must be absolute" in report.problems[0]
    assert "entry 7" in report.problems[1] and "does not exist" in report.problems[1]
    assert "delta" not in report.counts  # disabled: never read


def test_unreadable_repo_is_skipped_not_fatal(fleet):
    repos_file, _ = fleet
    alpha = repos_file.parent / "code" / "alpha"
    (alpha / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    head = alpha / ".git" / "refs" / "heads" / "main"
    head.write_text("0" * 40 + "\n")  # a branch pointing at a commit that does not exist
    report = fleet_report(repos_file, "2026-11-24T00:00:00Z")
    assert [c.repo for c in report.commits] == ["beta-service"]
    assert any("alpha" in p and "git log failed" in p for p in report.problems)


def test_unusable_repos_file_raises(tmp_path):
    bad = tmp_path / "repos.yaml"
    bad.write_text("repos: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        fleet_report(bad, "1 day ago")


def test_non_ascii_kept_and_control_characters_neutralised(tmp_path):
    repo = tmp_path / "r"
    commit(repo, "2026-11-24T08:00:00+00:00", "Zoë Ünal", "Grüße, 世界")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", "Bold \x1b[1mmove\x1b[0m",
        env={"GIT_COMMITTER_DATE": "2026-11-24T09:00:00+00:00"})
    repos_file = tmp_path / "repos.yaml"
    repos_file.write_text(f"repos:\n  - path: {repo}\n")
    report = fleet_report(repos_file, "2026-11-24T00:00:00Z")
    assert report.commits[0].subject == "Bold  [1mmove [0m"
    assert (report.commits[1].author, report.commits[1].subject) == ("Zoë Ünal", "Grüße, 世界")


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CLONE_", "GIT_"))}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**base, "TZ": "UTC", **(env or {})})


def test_cli_relative_since_from_any_cwd(tmp_path):
    now = int(time.time())
    recent = commit(tmp_path / "code" / "svc", f"@{now - 3600} +0000", "Ann Lee", "An hour ago")
    commit(tmp_path / "code" / "svc", f"@{now - 1800} +0000", "Ann Lee", "Half an hour ago")
    commit(tmp_path / "code" / "old", f"@{now - 10 * 3600} +0000", "Bob", "Ten hours ago")
    repos_file = tmp_path / "fleet.yaml"
    repos_file.write_text("repos:\n" + "".join(f"  - path: {tmp_path / 'code' / name}\n"
                                                for name in ("svc", "old")))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = run_cli("--since", "8 hours ago", cwd=elsewhere, env={"CLONE_REPOS_FILE": str(repos_file)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "time             | repo | hash         | author  | subject"
    assert lines[1].endswith("| svc  | " + git(tmp_path / "code" / "svc", "rev-parse", "HEAD")[:12]
                             + " | Ann Lee | Half an hour ago")
    assert lines[2].startswith(dt.datetime.fromtimestamp(now - 3600, UTC).strftime("%Y-%m-%d %H:%M"))
    assert recent[:12] in lines[2]
    assert lines[-5] == "2 commit(s) in 1 of 2 repo(s) since 8 hours ago"
    assert lines[-3:] == ["read:", "  old  checkout HEAD (no remote 'origin')",
                          "  svc  checkout HEAD (no remote 'origin')"]

    counts = run_cli("--counts", "--since", "1 day ago", "--repos-file", str(repos_file), cwd=elsewhere)
    assert counts.returncode == 0, counts.stderr
    assert counts.stdout.splitlines()[:4] == ["repo  | commits", "svc   |       2", "old   |       1",
                                              "total |       3"]


def test_cli_bad_entries_on_stderr_and_broken_file_exits_non_zero(tmp_path):
    repo = tmp_path / "code" / "svc"
    commit(repo, "2026-11-24T08:00:00+00:00", "Ann Lee", "Work")
    repos_file = tmp_path / "repos.yaml"
    repos_file.write_text(f"repos:\n  - path: {repo}\n  - path: {repo}\n    colour: red\n")
    result = run_cli("--since", "2026-11-01", "--repos-file", str(repos_file), cwd=tmp_path)
    assert result.returncode == 0
    assert "entry 2" in result.stderr and "unknown field(s) colour" in result.stderr
    assert "1 commit(s) in 1 of 1 repo(s)" in result.stdout

    repos_file.write_text("repos:\n  path: not-a-list\n")
    broken = run_cli("--repos-file", str(repos_file), cwd=tmp_path)
    assert broken.returncode == 1 and broken.stdout == ""
    assert f"fleet_report: {repos_file}: expected a mapping with a 'repos:' list" in broken.stderr

    missing = run_cli("--repos-file", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_the_report_reads_what_clone_pushed_not_the_checkouts(tmp_path, clone_env):
    """Clone pushes from its workspace and never updates your checkout: the report reads the remote."""
    from clone.fleet.repos_file import RepoEntry
    from clone.work.passes import run_pass
    from clone.config.settings import load_settings
    from tests.conftest import write_plan
    from tests.repos import commit_file, make_remote_and_checkout

    app, app_remote = make_remote_and_checkout(tmp_path, "app")
    lib, lib_remote = make_remote_and_checkout(tmp_path, "lib")
    local = tmp_path / "code" / "local"
    commit(local, "2026-11-24T08:00:00+00:00", "Ann Lee", "Only here")
    gone, _ = make_remote_and_checkout(tmp_path, "gone")
    git(gone, "remote", "set-url", "origin", str(tmp_path / "remotes" / "moved-away.git"))
    # Two Clone passes on app, pushed as the push task pushes: from the workspace.
    write_plan(clone_env["plan"], {"app": {"pass": [{"append": "notes.txt", "text": "one more\n"}]}})
    for run_id in ("r1", "r2"):
        result = run_pass(RepoEntry(path=str(app), name="app"), load_settings(), run_id)
        git(result["workdir"], "push", "--quiet", "origin", f"HEAD:{result['branch']}")
    # Someone else pushed to lib from another clone: neither the checkout nor a workspace has it.
    other = tmp_path / "other-lib"
    git(tmp_path, "clone", "--quiet", str(lib_remote), str(other))
    pushed_lib = commit_file(other, "lib.py", "x = 1\n", "lib: pushed elsewhere")
    git(other, "push", "--quiet", "origin", "main")
    refs_before = {p: git(p, "for-each-ref") for p in (app, lib)}

    repos_file = tmp_path / "fleet.yaml"
    repos_file.write_text("repos:\n" + "".join(f"  - path: {p}\n" for p in (app, lib, local, gone)))
    report = fleet_report(repos_file, "2000-01-01", workspace=clone_env["workspace"])

    app_head, lib_head = git(app_remote, "rev-parse", "main"), git(lib_remote, "rev-parse", "main")
    assert report.problems == []
    assert report.counts == {"app": 3, "gone": 1, "lib": 2, "local": 1}
    assert [c.subject for c in report.commits if c.repo == "app"] == [
        "clone: maintenance pass on app", "clone: maintenance pass on app", "initial"]
    assert git(app, "log", "--format=%s", "HEAD") == "initial"  # the checkout still has none of them
    assert [c.sha for c in report.commits if c.repo == "lib"][0] == pushed_lib == lib_head
    assert report.sources["app"] == f"origin/main {app_head[:12]} (remote)"
    assert report.sources["lib"] == f"origin/main {lib_head[:12]} (remote, fetched)"
    assert report.sources["local"] == "checkout HEAD (no remote 'origin')"
    assert report.sources["gone"].startswith("checkout HEAD (the remote could not be read: git ls-remote origin")
    assert {p: git(p, "for-each-ref") for p in (app, lib)} == refs_before  # the checkouts were only read
    rendered = render_counts(report).splitlines()
    assert rendered[:6] == ["repo  | commits", "app   |       3", "lib   |       2", "gone  |       1",
                            "local |       1", "total |       7"]
    assert rendered[-4:] == [f"  app    origin/main {app_head[:12]} (remote)",
                             f"  gone   {report.sources['gone']}",
                             f"  lib    origin/main {lib_head[:12]} (remote, fetched)",
                             "  local  checkout HEAD (no remote 'origin')"]

    # The script says the same, reading CLONE_WORKSPACE like the DAGs (the fetched copy is reused).
    cli = run_cli("--counts", "--since", "2000-01-01", "--repos-file", str(repos_file), cwd=tmp_path,
                  env={"CLONE_WORKSPACE": str(clone_env["workspace"])})
    assert cli.returncode == 0, cli.stderr
    assert "app   |       3" in cli.stdout and f"lib    origin/main {lib_head[:12]} (remote" in cli.stdout
