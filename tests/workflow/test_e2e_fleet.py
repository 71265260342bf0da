"""End to end: `airflow dags test clone_fleet` over three real repos, a local GitHub API and a scripted agent."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from tests.airflow_home import airflow, migrate
from tests.conftest import agent_calls, write_plan
from tests.fakes.github_api import CIOutcome, FakeGitHub, FakeJob
from tests.repos import git, log_subjects, make_remote_and_checkout, show

pytestmark = pytest.mark.slow
TOKEN = "ghp_e2eSECRETtoken0123456789abcdefABCDEF"


def ci_from_tree(bare: Path):
    """CI fails while the commit contains broken.txt, like a real test suite would."""

    def ci(sha: str, attempt: int) -> CIOutcome:
        if show(bare, sha, "broken.txt") is not None:
            log = "collected 3 items\ntests/test_app.py::test_ok PASSED\n" \
                  "tests/test_app.py::test_broken FAILED\nE   AssertionError: broken.txt must not exist\n"
            return CIOutcome("failure", [FakeJob("lint", "success", [("ruff", "success")], "ok"),
                                         FakeJob("test", "failure", [("Set up", "success"), ("pytest", "failure")],
                                                 log)])
        return CIOutcome()

    return ci


def test_clone_fleet_end_to_end(tmp_path, clone_env, monkeypatch):
    alpha, alpha_remote = make_remote_and_checkout(tmp_path, "alpha", {"README.md": "# alpha\n"})
    beta, beta_remote = make_remote_and_checkout(tmp_path, "beta", {"README.md": "# beta\n"})
    gamma, gamma_remote = make_remote_and_checkout(tmp_path, "gamma", {"README.md": "# gamma\n"})
    delta, delta_remote = make_remote_and_checkout(tmp_path, "delta", {"README.md": "# delta\n"})
    # The user's own checkout is mid-work: another branch, a dirty file.
    git(alpha, "checkout", "--quiet", "-b", "wip")
    (alpha / "README.md").write_text("# alpha, being edited\n")
    clone_env["repos_file"].write_text(
        "# my fleet\n"
        f"repos:\n  - path: {alpha}\n    github: acme/alpha\n"
        f"  - path: {beta}\n    github: acme/beta\n"
        f"  - path: {gamma}\n    github: acme/gamma\n    enabled: false  # hands off\n"
        f"  - path: {delta}\n    github: acme/delta\n"
    )
    write_plan(clone_env["plan"], {
        "alpha": {"pass": [{"write": "alpha.txt", "text": "improved\n"}]},
        "beta": {"pass": [{"write": "broken.txt", "text": "oops\n"}],
                 "autofix": [{"delete": "broken.txt"}, {"write": "fixed.txt", "text": "fixed\n"}]},
        "gamma": {"pass": [{"write": "gamma.txt", "text": "must not happen\n"}]},
        "delta": {"pass": [{"print": "agent crashed"}, {"exit": 3}]},  # its failure must not stop the others
    })
    home = tmp_path / "airflow"
    env = migrate(home)

    with FakeGitHub(token=TOKEN) as gh:
        for name, remote in (("alpha", alpha_remote), ("beta", beta_remote), ("gamma", gamma_remote),
                             ("delta", delta_remote)):
            gh.add_repo(f"acme/{name}", bare_path=remote, ci=ci_from_tree(remote), start_after_polls=1,
                        complete_after_polls=2)
        env.update({k: v for k, v in os.environ.items() if k.startswith(("CLONE_", "SCRIPTED_"))})
        env.update({
            "AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps({"conn_type": "github", "host": gh.url, "password": TOKEN}),
            "CLONE_CI_POLL_SECONDS": "0.2",
            "CLONE_CI_START_GRACE_SECONDS": "60",
            "CLONE_CI_TIMEOUT_MINUTES": "3",
            "GITHUB_TOKEN": TOKEN,
        })
        started = time.monotonic()
        result = airflow(env, "dags", "test", "clone_fleet", timeout=600)
        wall = time.monotonic() - started
        assert gh.server_errors == []
    output = result.stdout + result.stderr
    (tmp_path / "dags-test.log").write_text(output)  # kept for debugging a failure
    # The run fails because delta's chain failed; everything else still ran to the end.
    assert result.returncode != 0 and "DagRun failed" in output, output[-6000:]
    print(f"e2e: airflow dags test clone_fleet took {wall:.1f}s")

    # alpha: one pass commit pushed, CI green, user's checkout untouched.
    assert log_subjects(alpha_remote)[:2] == ["clone: maintenance pass on alpha", "initial"]
    assert show(alpha_remote, "main", "alpha.txt") == "improved\n"
    assert show(alpha_remote, "main", "PROJECT_MEMORY.md")
    assert git(alpha, "branch", "--show-current") == "wip"
    assert (alpha / "README.md").read_text() == "# alpha, being edited\n"
    assert git(alpha, "log", "-1", "--format=%s") == "initial"

    # beta: the failing pass commit, then an autofix commit; CI green at the end.
    assert log_subjects(beta_remote)[:3] == ["clone: fix CI failure on beta", "clone: maintenance pass on beta",
                                             "initial"]
    head = git(beta_remote, "rev-parse", "main")
    assert show(beta_remote, head, "broken.txt") is None and show(beta_remote, head, "fixed.txt") == "fixed\n"
    assert gh.run_for("acme/beta", head)["conclusion"] == "success"
    autofix_calls = [c for c in agent_calls(clone_env["agent_log"]) if c["kind"] == "autofix"]
    assert len(autofix_calls) == 1
    assert "broken.txt must not exist" in autofix_calls[0]["prompt"]
    assert "pytest" in autofix_calls[0]["prompt"]  # the failing step is named
    assert "\x1b[" not in autofix_calls[0]["prompt"]  # colour codes stripped

    # gamma: disabled, untouched.
    assert log_subjects(gamma_remote) == ["initial"]
    assert {c["repo"] for c in agent_calls(clone_env["agent_log"])} == {"alpha", "beta", "delta"}
    # delta's agent crashed: nothing of the pass was pushed, only the incident record.
    assert log_subjects(delta_remote) == ["clone: record agent-failure incident", "initial"]
    assert "agent-failure: the command agent did not finish its pass" in show(delta_remote, "main", "INCIDENTS.md")
    assert show(delta_remote, "main", "README.md") == "# delta\n"

    # The token never reaches the agent or any log.
    for call in agent_calls(clone_env["agent_log"]):
        assert TOKEN not in json.dumps(call["env"])
    assert TOKEN not in output
    for log_file in (home / "logs").rglob("*"):
        if log_file.is_file():
            assert TOKEN not in log_file.read_text(errors="replace"), log_file
    # The run summary lists each repo and its chain.
    assert "| repo | pass | verification | commits | CI | autofix | tokens | duration | CI run | result |" in output
    assert re.search(r"\| alpha \| changed \| unverified \(no checks found; CLONE_VERIFY_POLICY=warn\) \| 1 \| success \| - \| 0 \| \d+s \| "
                     r"https://github.com/acme/alpha/actions/runs/\d+ \| ok \|", output)
    assert re.search(r"\| beta \| changed \| unverified \(no checks found; CLONE_VERIFY_POLICY=warn\) \| 2 \| success \| 1 \| 0 \| \d+s \| "
                     r"https://github.com/acme/beta/actions/runs/\d+ \| ok \|", output)
    assert "| delta | failed | - | 0 | - | - | 0 | - | - | FAILED |" in output
    assert "3 repo(s), 1 failed: delta" in output
    assert "agent command failed on delta (pass): exited with code 3" in output


def test_kill_switch_stops_every_pass(tmp_path, clone_env):
    alpha, alpha_remote = make_remote_and_checkout(tmp_path, "alpha")
    clone_env["repos_file"].write_text(f"repos:\n  - path: {alpha}\n")
    write_plan(clone_env["plan"], {"*": {"pass": [{"write": "x.txt", "text": "x\n"}]}})
    env = migrate(tmp_path / "airflow")
    env.update({k: v for k, v in os.environ.items() if k.startswith(("CLONE_", "SCRIPTED_"))})
    env["AIRFLOW_VAR_CLONE_PAUSED"] = "true"
    result = airflow(env, "dags", "test", "clone_fleet", timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "the kill switch is on (Airflow Variable clone_paused=true)" in output
    assert agent_calls(clone_env["agent_log"]) == []
    assert log_subjects(alpha_remote) == ["initial"]
    # The row says why (dags test has no REST API to read the skip's log: the summary tells it by itself).
    assert ("| alpha | skipped | - | 0 | - | - | 0 | - | - | skipped: the kill switch is on (Airflow Variable "
            "clone_paused=true) |") in output


def test_flaky_ci_is_rerun_and_recorded_not_autofixed(tmp_path, clone_env):
    app, remote = make_remote_and_checkout(tmp_path, "app")
    clone_env["repos_file"].write_text(f"repos:\n  - path: {app}\n    github: acme/app\n")
    write_plan(clone_env["plan"], {"*": {"pass": [{"write": "a.txt", "text": "a\n"}],
                                         "autofix": [{"write": "never.txt", "text": "x\n"}]}})
    env = migrate(tmp_path / "airflow")

    def flaky(sha: str, attempt: int) -> CIOutcome:
        return CIOutcome.failed(log="connection reset by peer") if attempt == 1 else CIOutcome()

    with FakeGitHub(token=TOKEN) as gh:
        gh.add_repo("acme/app", bare_path=remote, ci=flaky)
        env.update({k: v for k, v in os.environ.items() if k.startswith(("CLONE_", "SCRIPTED_"))})
        env.update({"AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps({"conn_type": "github", "host": gh.url,
                                                               "password": TOKEN}),
                    "CLONE_CI_POLL_SECONDS": "0.2"})
        result = airflow(env, "dags", "test", "clone_fleet", timeout=600)
        assert gh.count("POST", r"/rerun-failed-jobs$") == 1
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert [c["kind"] for c in agent_calls(clone_env["agent_log"])] == ["pass"]  # no autofix
    assert log_subjects(remote)[:2] == ["clone: record flaky CI run", "clone: maintenance pass on app"]
    assert "CI flaky: failed, then green when the failed jobs were re-run" in show(remote, "main",
                                                                                   "PROJECT_MEMORY.md")
