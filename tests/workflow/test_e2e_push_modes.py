"""The gated and pr push modes end to end on real bare remotes and the local GitHub API."""

from __future__ import annotations

import json
import os

import pytest

from tests.airflow_home import airflow, migrate
from tests.conftest import agent_calls, write_plan
from tests.fakes.github_api import CIOutcome, FakeGitHub
from tests.repos import git, log_subjects, make_remote_and_checkout, show

pytestmark = pytest.mark.slow
TOKEN = "ghp_pushModesToken0123456789abcdefABCDEF"


def run_fleet(tmp_path, clone_env, gh, extra_env):
    env = migrate(tmp_path / "airflow")
    env.update({k: v for k, v in os.environ.items() if k.startswith(("CLONE_", "SCRIPTED_"))})
    env.update({"AIRFLOW_CONN_GITHUB_DEFAULT": json.dumps({"conn_type": "github", "host": gh.url, "password": TOKEN}),
                "CLONE_CI_POLL_SECONDS": "0.2", "CLONE_CI_START_GRACE_SECONDS": "60", **extra_env})
    result = airflow(env, "dags", "test", "clone_fleet", timeout=600)
    output = result.stdout + result.stderr
    (tmp_path / "dags-test.log").write_text(output)
    return result.returncode, output


def branches(bare):
    return sorted(git(bare, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split())


def test_gated_lands_green_work_and_rebases_when_main_moved(tmp_path, clone_env):
    app, remote = make_remote_and_checkout(tmp_path, "app", {"README.md": "# app\n", "human.txt": "h\n"})
    clone_env["repos_file"].write_text(f"repos:\n  - path: {app}\n    github: acme/app\n    push_mode: gated\n")
    write_plan(clone_env["plan"], {"*": {"pass": [{"write": "feature.txt", "text": "f\n"}]}})
    seen_on_main = []
    moved = {}

    def ci(sha, attempt):
        seen_on_main.append(git(remote, "rev-parse", "main"))
        if not moved:  # a person pushes to main while CI runs on the work branch
            git(app, "pull", "--quiet", "--rebase", "origin", "main")
            (app / "human.txt").write_text("h2\n")
            git(app, "commit", "--quiet", "-am", "human change during CI")
            git(app, "push", "--quiet", "origin", "main")
            moved["sha"] = git(remote, "rev-parse", "main")
        return CIOutcome()

    with FakeGitHub(token=TOKEN) as gh:
        gh.add_repo("acme/app", bare_path=remote, ci=ci)
        code, output = run_fleet(tmp_path, clone_env, gh, {})
        head = git(remote, "rev-parse", "main")
        ci_of_head = gh.run_for("acme/app", head)
    assert code == 0, output[-5000:]
    # main got the work only after CI was green on exactly that commit, rebased on the human change.
    assert log_subjects(remote)[:3] == ["clone: maintenance pass on app", "human change during CI", "initial"]
    assert ci_of_head is not None and ci_of_head["conclusion"] == "success"
    assert show(remote, "main", "feature.txt") == "f\n" and show(remote, "main", "human.txt") == "h2\n"
    assert branches(remote) == ["main"]  # work branches deleted after landing
    assert "rebasing, re-verifying and waiting for CI again" in output
    # main never pointed at an untested commit of ours.
    assert all(sha in (moved["sha"], git(remote, "rev-parse", "main~2")) for sha in seen_on_main[1:])


def test_pr_mode_opens_a_described_pr_and_automerges(tmp_path, clone_env):
    app, remote = make_remote_and_checkout(tmp_path, "app", {"Makefile": "test:\n\t@true\n"})
    clone_env["repos_file"].write_text(f"repos:\n  - path: {app}\n    github: acme/app\n")
    write_plan(clone_env["plan"], {"*": {"pass": [{"write": "feature.txt", "text": "f\n"},
                                                  {"print": "Outcome: done"}]}})
    with FakeGitHub(token=TOKEN) as gh:
        gh.add_repo("acme/app", bare_path=remote)
        code, output = run_fleet(tmp_path, clone_env, gh, {"CLONE_PUSH_MODE": "pr", "CLONE_PR_AUTOMERGE": "1"})
        pulls = gh.repo("acme/app").pulls
    assert code == 0, output[-5000:]
    (pull,) = pulls.values()
    assert pull.head.startswith("clone/app/") and pull.base == "main"
    assert "## What changed" in pull.body and "## Verification (run by Clone after the agent)" in pull.body
    assert "- PASS test: `make test`" in pull.body
    assert "## CI" in pull.body and "- success:" in pull.body  # updated with the CI result
    assert pull.merged
    assert show(remote, "main", "feature.txt") == "f\n"
    assert [c["kind"] for c in agent_calls(clone_env["agent_log"])] == ["pass"]


def test_pr_mode_without_automerge_leaves_the_pr_open(tmp_path, clone_env):
    app, remote = make_remote_and_checkout(tmp_path, "app")
    clone_env["repos_file"].write_text(f"repos:\n  - path: {app}\n    github: acme/app\n    push_mode: pr\n")
    write_plan(clone_env["plan"], {"*": {"pass": [{"write": "feature.txt", "text": "f\n"}]}})
    with FakeGitHub(token=TOKEN) as gh:
        gh.add_repo("acme/app", bare_path=remote)
        code, output = run_fleet(tmp_path, clone_env, gh, {})
        (pull,) = gh.repo("acme/app").pulls.values()
    assert code == 0, output[-5000:]
    assert pull.state == "open" and not pull.merged
    assert log_subjects(remote) == ["initial"]  # main untouched
    assert "CLONE_PR_AUTOMERGE=0 leaves the merge to a person" in output


# lint is red once lint-broken.txt exists; test is red once feature.txt (the agent's) and blocker.txt both do.
GATED_MAKEFILE = ("lint:\n\t@test ! -e lint-broken.txt\n"
                  "test:\n\t@if [ -e feature.txt ] && [ -e blocker.txt ]; then echo 'feature vs blocker'; exit 1; fi\n")


@pytest.mark.parametrize("human_file, lands", [("lint-broken.txt", True), ("blocker.txt", False)])
def test_gated_recheck_after_rebase_is_judged_against_the_new_target(tmp_path, clone_env, human_file, lands):
    """main moves during CI: a check already red on the new main does not stop the landing; a check green on
    the new main and red after rebasing the agent's work onto it does."""
    app, remote = make_remote_and_checkout(tmp_path, "app", {"Makefile": GATED_MAKEFILE})
    clone_env["repos_file"].write_text(f"repos:\n  - path: {app}\n    github: acme/app\n    push_mode: gated\n")
    write_plan(clone_env["plan"], {"*": {"pass": [{"write": "feature.txt", "text": "f\n"}]}})
    moved = {}

    def ci(sha, attempt):
        if not moved:  # a person pushes to main while CI runs on the work branch
            git(app, "pull", "--quiet", "--rebase", "origin", "main")
            (app / human_file).write_text("h\n")
            git(app, "add", human_file)
            git(app, "commit", "--quiet", "-m", f"human adds {human_file}")
            git(app, "push", "--quiet", "origin", "main")
            moved["sha"] = git(remote, "rev-parse", "main")
        return CIOutcome()

    with FakeGitHub(token=TOKEN) as gh:
        gh.add_repo("acme/app", bare_path=remote, ci=ci)
        code, output = run_fleet(tmp_path, clone_env, gh, {"CLONE_VERIFY_POLICY": "block"})
    assert "rebasing, re-verifying and waiting for CI again" in output, output[-5000:]
    if lands:
        assert code == 0, output[-5000:]
        assert "passed (pre-existing red: lint)" in output
        assert log_subjects(remote)[:2] == ["clone: maintenance pass on app", f"human adds {human_file}"]
    else:
        assert code != 0
        assert f"checks green on main ({moved['sha'][:12]}) are red after rebasing onto it; not landing" in output
        assert "feature vs blocker" in output
        assert git(remote, "rev-parse", "main") == moved["sha"]  # main untouched by the red work
