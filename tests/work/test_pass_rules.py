"""The rules a pass enforces, on real repos with a scripted agent: checks, guards, core policy,
incidents, token budgets, stall detection, memory history and compaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from clone.errors import AgentError
from clone.fleet.repos_file import RepoEntry
from clone.work.passes import PassBlocked, PassSkipped, run_pass
from clone.config.settings import load_settings
from tests.conftest import agent_calls, write_plan
from tests.repos import commit_file, git, log_subjects, make_remote_and_checkout, show

FAKE_KEY = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"  # built here so this file holds no literal token
MAKEFILE = "test:\n\t@test ! -f broken.flag || (echo 'FAILED: broken.flag present'; exit 1)\n"


@pytest.fixture(autouse=True)
def block_policy(clone_env, monkeypatch):
    monkeypatch.setenv("CLONE_VERIFY_POLICY", "block")


@pytest.fixture
def repo(clone_env, tmp_path):
    checkout, bare = make_remote_and_checkout(tmp_path, "app", {"Makefile": MAKEFILE, "app.py": "x = 1\n",
                                                               "tests/test_app.py": "def test_x():\n    pass\n"})
    return RepoEntry(path=str(checkout), name="app"), bare


def run(entry, run_id="r1"):
    return run_pass(entry, load_settings(), run_id)


def pushed(result):
    """Push what the pass committed (the push task's job), so the next pass starts from it."""
    git(result["workdir"], "push", "--quiet", "origin", f"HEAD:{result['branch']}")


def human_push(entry, rel, text):
    """A person commits on top of the current remote branch in their checkout and pushes."""
    git(entry.path, "pull", "--quiet", "--rebase", "origin", "main")
    commit_file(Path(entry.path), rel, text, "human work")
    git(entry.path, "push", "--quiet", "origin", "main")


def test_green_checks_are_recorded_as_evidence(clone_env, repo):
    entry, bare = repo
    write_plan(clone_env["plan"], {"*": {"pass": [{"write": "app.py", "text": "x = 2\n"}]}})
    result = run(entry)
    assert result["verification"] == "passed"
    assert [(c["name"], c["command"], c["exit_code"], c["ok"]) for c in result["checks"]] == [
        ("test", "make test", 0, True)]
    memory_doc = git(result["workdir"], "show", "HEAD:PROJECT_MEMORY.md")
    history = memory_doc.split("## Verification history", 1)[1]
    assert "· run r1 ·" in history and "- PASS test: make test" in history and "Outcome: committed" in history


def test_red_check_gets_one_fix_chance_then_blocks_the_push(clone_env, repo):
    entry, bare = repo
    write_plan(clone_env["plan"], {"*": {"pass": [{"write": "broken.flag", "text": "1"}],
                                         "autofix": [{"print": "trying, but not fixing"}]}})
    with pytest.raises(PassBlocked, match="verification is red"):
        run(entry)
    calls = agent_calls(clone_env["agent_log"])
    assert [c["kind"] for c in calls] == ["pass", "autofix"]
    assert "FAILED: broken.flag present" in calls[1]["prompt"]  # the failure output was handed over
    # Nothing of the pass landed; only the incident was pushed, and the work is kept under a ref.
    assert log_subjects(bare) == ["clone: record verification-red incident", "initial"]
    assert show(bare, "main", "broken.flag") is None
    assert "verification-red" in show(bare, "main", "INCIDENTS.md")
    workdir = clone_env["workspace"] / "repos" / "app"
    assert git(workdir, "for-each-ref", "--format=%(refname)", "refs/clone/red/")


def test_red_check_fixed_by_the_agent_is_committed(clone_env, repo):
    entry, _ = repo
    write_plan(clone_env["plan"], {"*": {"pass": [{"write": "broken.flag", "text": "1"},
                                                  {"write": "feature.py", "text": "y = 1\n"}],
                                         "autofix": [{"delete": "broken.flag"}]}})
    result = run(entry)
    assert result["verification"] == "passed after fix" and result["changed"]
    files = git(result["workdir"], "show", "--name-only", "--format=", "HEAD").split()
    assert "feature.py" in files and "broken.flag" not in files


def test_warn_policy_lets_red_checks_through(clone_env, repo, monkeypatch):
    entry, _ = repo
    monkeypatch.setenv("CLONE_VERIFY_POLICY", "warn")
    write_plan(clone_env["plan"], {"*": {"pass": [{"write": "broken.flag", "text": "1"}]}})
    result = run(entry)
    assert result["verification"] == "failed (warn)" and result["changed"]


def test_check_artifacts_are_not_committed(clone_env, tmp_path):
    checkout, _ = make_remote_and_checkout(tmp_path, "art", {"Makefile": "test:\n\t@mkdir -p build && touch build/out\n"})
    write_plan(clone_env["plan"], {"*": {"pass": [{"write": "a.txt", "text": "a\n"}]}})
    result = run(RepoEntry(path=str(checkout), name="art"))
    files = git(result["workdir"], "show", "--name-only", "--format=", "HEAD").split()
    assert "a.txt" in files and not [f for f in files if f.startswith("build/")]


RED_LINT = MAKEFILE + "lint:\n\t@echo 'E999 pre-existing style error'; exit 1\n"


def test_red_at_baseline_is_pre_existing_not_the_agents(clone_env, tmp_path):
    """lint is red on the untouched base commit: it never blocks and is never handed to the agent."""
    checkout, bare = make_remote_and_checkout(tmp_path, "redbase", {"Makefile": RED_LINT, "app.py": "x = 1\n"})
    entry = RepoEntry(path=str(checkout), name="redbase")
    write_plan(clone_env["plan"], {"*": {"pass": [{"write": "app.py", "text": "x = 2\n"}]}})
    result = run(entry)
    assert result["verification"] == "passed (pre-existing red: lint)" and result["changed"]
    assert [(c["name"], c["ok"]) for c in result["baseline"]] == [("lint", False), ("test", True)]
    history = git(result["workdir"], "show", "HEAD:PROJECT_MEMORY.md").split("## Verification history", 1)[1]
    assert "pre-existing red: lint" in history
    assert "verification-red" not in (show(bare, "main", "INCIDENTS.md") or "")


def test_red_at_baseline_still_blocks_what_the_agent_broke(clone_env, tmp_path):
    checkout, bare = make_remote_and_checkout(tmp_path, "redbase", {"Makefile": RED_LINT, "app.py": "x = 1\n"})
    entry = RepoEntry(path=str(checkout), name="redbase")
    write_plan(clone_env["plan"], {"*": {"pass": [{"write": "broken.flag", "text": "1"}],
                                         "autofix": [{"print": "not fixing"}]}})
    with pytest.raises(PassBlocked, match="verification is red"):
        run(entry)
    fix_prompt = agent_calls(clone_env["agent_log"])[1]["prompt"]
    assert "FAILED: broken.flag present" in fix_prompt and "E999" not in fix_prompt  # only the regression
    assert log_subjects(bare) == ["clone: record verification-red incident", "initial"]


def test_baseline_is_cached_per_sha(clone_env, tmp_path):
    runs = clone_env["plan"].parent / "runs.log"  # the one place outside the work tree a check may write
    checkout, _ = make_remote_and_checkout(tmp_path, "cached", {"Makefile": f"test:\n\t@echo run >> {runs}\n"})
    entry = RepoEntry(path=str(checkout), name="cached")
    write_plan(clone_env["plan"], {"*": {"pass": []}})  # the agent changes nothing
    run(entry, "r1")
    run(entry, "r2")
    assert runs.read_text().count("run") == 1  # the baseline ran once; nothing after an empty pass


def test_no_checks_is_held_under_block(clone_env, tmp_path):
    checkout, bare = make_remote_and_checkout(tmp_path, "nochecks", {"README.md": "hi\n"})
    write_plan(clone_env["plan"], {"*": {"pass": [{"write": "a.txt", "text": "a\n"}]}})
    with pytest.raises(PassBlocked, match=r"unverified \(no checks found\) and no CI will judge"):
        run(RepoEntry(path=str(checkout), name="nochecks"))
    assert show(bare, "main", "a.txt") is None
    assert "unverified" in show(bare, "main", "INCIDENTS.md")


def test_no_checks_on_purpose_or_judged_by_ci_goes_ahead(clone_env, tmp_path):
    checkout, _ = make_remote_and_checkout(tmp_path, "optout", {"README.md": "hi\n"})
    write_plan(clone_env["plan"], {"*": {"pass": [{"write": "a.txt", "text": "a\n"}]}})
    result = run(RepoEntry(path=str(checkout), name="optout", verify=()))
    assert result["verification"] == "none (verify: [] in repos.yaml)" and result["changed"]
    checkout, _ = make_remote_and_checkout(tmp_path / "ci", "withci", {
        "README.md": "hi\n", ".github/workflows/ci.yml": "on: push\njobs: {}\n"})
    result = run(RepoEntry(path=str(checkout), name="withci", github="acme/withci"))
    assert result["verification"] == "unverified (no checks found; the repo's CI judges the push)"
    assert result["changed"]


def test_failed_setup_is_an_environment_incident_not_a_block(clone_env, tmp_path):
    checkout, _ = make_remote_and_checkout(tmp_path, "badsetup", {"Makefile": MAKEFILE})
    entry = RepoEntry(path=str(checkout), name="badsetup", setup=("no-such-installer-xyz",))
    write_plan(clone_env["plan"], {"*": {"pass": [{"write": "a.txt", "text": "a\n"}]}})
    result = run(entry)
    assert result["setup"]["status"] == "failed" and result["verification"] == "passed"
    incidents = git(result["workdir"], "show", "HEAD:INCIDENTS.md")
    assert "environment: the repository's setup failed: no-such-installer-xyz" in incidents


def test_planted_key_blocks_the_push(clone_env, repo):
    entry, bare = repo
    write_plan(clone_env["plan"], {"*": {"pass": [{"write": "config.py", "text": f'TOKEN = "{FAKE_KEY}"\n'}]}})
    with pytest.raises(PassBlocked, match="blocked by the guards") as err:
        run(entry)
    assert FAKE_KEY not in str(err.value)
    assert log_subjects(bare) == ["clone: record guard incident", "initial"]
    incidents = show(bare, "main", "INCIDENTS.md")
    assert "secret" in incidents and FAKE_KEY not in incidents
    assert show(bare, "main", "config.py") is None


def test_deleted_test_is_blocked(clone_env, repo):
    entry, bare = repo
    write_plan(clone_env["plan"], {"*": {"pass": [{"delete": "tests/test_app.py"}]}})
    with pytest.raises(PassBlocked, match="deleted-test"):
        run(entry)
    assert show(bare, "main", "tests/test_app.py") is not None


def test_core_policy_is_restored_and_recorded(clone_env, repo):
    entry, bare = repo
    first = run(entry)  # creates AGENTS.md from the template
    pushed(first)
    write_plan(clone_env["plan"], {"*": {"pass": [
        {"replace": "AGENTS.md", "old": "Never force anything", "new": "Force pushes are fine"},
        {"replace": "AGENTS.md", "old": "## Repository notes", "new": "## Repository notes\n\nUse make test."},
        {"write": "app.py", "text": "x = 3\n"}]}})
    result = run(entry, "r2")
    agents = git(result["workdir"], "show", "HEAD:AGENTS.md")
    assert "Never force anything" in agents and "Force pushes are fine" not in agents
    assert "Use make test." in agents  # edits outside the protected region are kept
    incidents = git(result["workdir"], "show", "HEAD:INCIDENTS.md")
    assert "policy violation" in incidents
    assert result["incidents"]


def test_agent_crash_is_an_incident_and_keeps_partial_work(clone_env, repo):
    entry, bare = repo
    write_plan(clone_env["plan"], {"*": {"pass": [{"write": "half.py", "text": "1\n"}, {"exit": 9}]}})
    with pytest.raises(AgentError, match="exited with code 9"):
        run(entry)
    assert "agent-failure" in show(bare, "main", "INCIDENTS.md")
    assert show(bare, "main", "half.py") is None
    workdir = clone_env["workspace"] / "repos" / "app"
    ref = git(workdir, "for-each-ref", "--format=%(refname)", "refs/clone/agent-failed/")
    assert show(workdir, ref, "half.py") == "1\n"
    # The same failure again is not written twice.
    with pytest.raises(AgentError):
        run(entry, "r2")
    assert show(bare, "main", "INCIDENTS.md").count("agent-failure") == 1


def test_token_budget_stops_an_agent_that_keeps_spending(clone_env, repo, monkeypatch):
    entry, bare = repo
    monkeypatch.setenv("CLONE_MAX_TOKENS_PER_PASS", "5000")
    usage = {"input_tokens": 1000, "cached_input_tokens": 0, "output_tokens": 200}
    write_plan(clone_env["plan"], {"*": {"pass": [{"usage": usage, "times": 1000, "sleep": 0.02}]}})
    with pytest.raises(AgentError, match="token budget exceeded") as err:
        run(entry)
    assert err.value.result.over_budget and 5000 < err.value.result.total_tokens < 9000
    assert "token-budget" in show(bare, "main", "INCIDENTS.md")


def test_run_budget_stops_new_passes(clone_env, repo, monkeypatch):
    entry, _ = repo
    monkeypatch.setenv("CLONE_MAX_TOKENS_PER_RUN", "1000")
    write_plan(clone_env["plan"], {"*": {"pass": [
        {"usage": {"input_tokens": 900, "output_tokens": 300}}, {"write": "a.txt", "text": "a\n"}]}})
    first = run(entry, "run-A")
    assert first["tokens"] == 1200
    with pytest.raises(PassSkipped, match="run's token budget is spent"):
        run(entry, "run-A")
    assert run(entry, "run-B")["tokens"] == 1200  # a new run has a new budget


def test_stall_skips_then_resumes_on_new_commits(clone_env, repo, monkeypatch):
    entry, _ = repo
    monkeypatch.setenv("CLONE_STALL_PASSES", "2")
    pushed(run(entry))  # adds the memory docs; the agent itself changes nothing from here on
    assert run(entry, "r2")["changed"] is False
    assert run(entry, "r3")["changed"] is False
    with pytest.raises(PassSkipped, match="stalled: the last 2 passes changed nothing"):
        run(entry, "r4")
    human_push(entry, "new.txt", "n\n")
    assert run(entry, "r5")["changed"] is False  # new commits: it runs again


def test_memory_is_compacted_past_the_limit(clone_env, repo, monkeypatch):
    entry, _ = repo
    monkeypatch.setenv("PROJECT_MEMORY_MAX_LINES", "60")
    big = "".join(f"- 2026-01-{i % 28 + 1:02d} — decision {i}\n" for i in range(200))
    write_plan(clone_env["plan"], {"*": {"pass": [
        {"replace": "PROJECT_MEMORY.md", "old": "## Evidence", "new": big + "\n## Evidence"}]}})
    result = run(entry)
    workdir = result["workdir"]
    compacted = git(workdir, "show", "HEAD:PROJECT_MEMORY.md")
    assert len(compacted.splitlines()) <= 60 and "## Verification history" in compacted
    archives = git(workdir, "show", "--name-only", "--format=", "HEAD").split()
    archive = [f for f in archives if f.startswith(".clone_memory_archive/")]
    assert len(archive) == 1
    archived = git(workdir, "show", f"HEAD:{archive[0]}")
    assert "decision 0\n" in archived and "decision 199" in archived


def test_prompt_lists_top_backlog_items_and_guards(clone_env, repo):
    entry, _ = repo
    first = run(entry)
    pushed(first)
    backlog = "# Backlog\n\n## Open\n- [ ] (P3) polish — later\n- [ ] (P1) fix crash — users hit it\n- [x] done\n"
    human_push(entry, "CLONE_FEATURES.md", backlog)
    result = run(entry, "r2")
    prompt = agent_calls(clone_env["agent_log"])[-1]["prompt"]
    top = prompt.split("## Highest-priority open backlog items", 1)[1]
    assert top.index("fix crash") < top.index("polish")
    assert "Guards the orchestrator enforces" in prompt and "`make test`" in prompt
    assert result["backlog_before"] == {"open": 2, "done": 1}


def test_agent_changes_to_git_config_are_undone(clone_env, repo, tmp_path, monkeypatch):
    # The sandbox makes .git read-only (tests/checks/test_sandbox_attacks.py); without it, the restore holds.
    monkeypatch.setenv("CLONE_SANDBOX", "off")
    entry, bare = repo
    marker = tmp_path / "fsmonitor-ran"
    hook = tmp_path / "evil.sh"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    write_plan(clone_env["plan"], {"*": {"pass": [
        {"append": ".git/config", "text": f"[core]\n\tfsmonitor = {hook}\n[remote \"origin\"]\n\tpushurl = /tmp/x\n"},
        {"write": "app.py", "text": "x = 5\n"}]}})
    result = run(entry)
    workdir = result["workdir"]
    assert "fsmonitor" not in (clone_env["workspace"] / "repos" / "app" / ".git" / "config").read_text()
    assert not marker.exists()
    assert "the agent changed .git/config" in git(workdir, "show", "HEAD:INCIDENTS.md")


def test_fix_attempt_is_held_to_the_same_rules(clone_env, tmp_path):
    makefile = "test:\n\t@mkdir -p out && touch out/build.o\n\t@test ! -f broken.flag\n"
    checkout, _ = make_remote_and_checkout(tmp_path, "fx", {"Makefile": makefile})
    entry = RepoEntry(path=str(checkout), name="fx")
    pushed(run(entry))  # memory docs in place, AGENTS.md has its core policy
    write_plan(clone_env["plan"], {"*": {
        "pass": [{"write": "broken.flag", "text": "1"}, {"write": "f.py", "text": "1\n"}],
        "autofix": [{"delete": "broken.flag"},
                    {"replace": "AGENTS.md", "old": "Never force anything", "new": "Force is fine"}]}})
    result = run(entry, "r2")
    assert result["verification"] == "passed after fix"
    files = git(result["workdir"], "show", "--name-only", "--format=", "HEAD").split()
    assert "f.py" in files and not [f for f in files if f.startswith("out/")]
    agents = git(result["workdir"], "show", "HEAD:AGENTS.md")
    assert "Never force anything" in agents and "Force is fine" not in agents
