"""Triage, bootstrap, publish and enrol on real git, the scripted agent and the local GitHub API."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from clone.ideas import bootstrap as steps
from clone.fleet.repos_file import load_fleet
from clone.github.client import GitHubClient
from clone.github.repos import GitHubRepo
from clone.ideas.ideas_file import ACTIVE, BLOCKED, TRIAGED, Idea, get_idea, set_status
from clone.config.settings import load_settings
from tests.conftest import agent_calls, write_plan
from tests.fakes.github_api import BareRepo, FakeGitHub
from tests.repos import commit_file, git, log_subjects, make_remote_and_checkout

TOKEN = "ghp_unitSECRETtoken0123456789abcdefABCDEF"
BOOTSTRAP_PLAN = {"*": {"bootstrap": [{"write": "notes.py", "text": "print('notes')\n"},
                                      {"print": "Outcome: done"}]}}

@pytest.fixture
def gh(tmp_path):
    with FakeGitHub(token=TOKEN, repos_root=tmp_path / "github") as fake:
        yield fake

def ideas_file(clone_env, text: str) -> Path:
    clone_env["ideas_file"].write_text(text)
    return clone_env["ideas_file"]

def one_idea(clone_env, repo_name: str | None = "notes-cli", idea_id: str = "n1") -> Path:
    name = "" if repo_name is None else f"    repo_name: {repo_name!r}\n"
    return ideas_file(clone_env, f"ideas:\n  - id: {idea_id}   # mine\n    title: Notes CLI\n"
                                 f"    summary: Keep notes in a {{text}} file.\n    status: NEW\n{name}")

def step(name: str, idea_id: str = "n1", token: str = TOKEN, gh: FakeGitHub | None = None) -> dict:
    settings = load_settings()

    def action(idea):
        if name == "triage":
            return steps.triage(settings, idea)
        if name == "bootstrap":
            return steps.bootstrap(settings, idea, "manual__1")
        if name == "publish":
            with GitHubClient.for_token(gh.url, token, throttle=False) as api:
                return steps.publish(settings, idea, api)
        return steps.enrol(settings, idea)

    return steps.run_step(name, settings, idea_id, action)

def tree(root: Path) -> list[Path]:
    """Every path under ``root`` except the ideas file and its lock."""
    return sorted(p.relative_to(root) for p in root.rglob("*") if "ideas.yaml" not in p.name)


def bootstrapped(clone_env, **kwargs) -> Path:
    one_idea(clone_env, **kwargs)
    write_plan(clone_env["plan"], BOOTSTRAP_PLAN)
    step("triage")
    return Path(step("bootstrap")["repo_path"])

@pytest.mark.parametrize("name", ["../x", "a/b", "-rf", "", "   ", "x" * 101, ".", "..", ".hidden", "a b",
                                  "ab\n", "name.git", "a\\b", "naïve", "a\nb"])
def test_unsafe_repo_names(name):
    assert steps.repo_name_problem(name)

@pytest.mark.parametrize("name", ["notes-cli", "proj_1.2", "A", "x" * 100])
def test_safe_repo_names(name):
    assert steps.repo_name_problem(name) is None

def test_triage_derives_a_missing_repo_name_and_touches_no_disk(clone_env):
    path = one_idea(clone_env, repo_name=None)
    step("triage")
    idea = get_idea(path, "n1")
    assert (idea.status, idea.repo_name) == (TRIAGED, "notes-cli")
    assert "# mine" in path.read_text() and "repo_name: notes-cli" in path.read_text()
    assert list(clone_env["code"].iterdir()) == []

@pytest.mark.parametrize(("hostile", "message"), [
    ("../x", "repo_name '../x' is not a safe directory name: it contains a path separator"),
    ("a/b", "it contains a path separator"),
    ("-rf", "it starts with '-'"),
    ("", "repo_name '' is not a safe directory name: it is empty"),
    ("y" * 300, "it is 300 characters long (at most 100)"),
])
def test_a_hostile_repo_name_is_blocked_and_nothing_is_written(clone_env, tmp_path, hostile, message):
    path = one_idea(clone_env, repo_name=hostile)
    before = tree(tmp_path)
    with pytest.raises(steps.IdeaBlocked, match="is BLOCKED: triage: repo_name"):
        step("triage")
    idea = get_idea(path, "n1")
    assert idea.status == BLOCKED and message in idea.last_error and idea.retry_at is None
    assert "set status to TRIAGED to retry" in idea.last_error
    assert tree(tmp_path) == before

def _someone_elses(kind: str, target: Path, tmp_path: Path) -> None:
    if kind == "files":
        target.mkdir()
        (target / "thesis.tex").write_text("mine\n")
    elif kind == "checkout":
        make_remote_and_checkout(tmp_path, "notes-cli")  # lands at code/notes-cli
    elif kind == "other idea's repo":
        target.mkdir()
        git(target, "init", "--quiet", "-b", "main")
        git(target, "config", "clone.idea", "someone-else")
    elif kind == "file":
        target.write_text("not a directory\n")
    elif kind == "symlink":
        (tmp_path / "elsewhere").mkdir()
        target.symlink_to(tmp_path / "elsewhere")

@pytest.mark.parametrize(("kind", "message"), [
    ("files", "already exists and is not this idea's project"),
    ("checkout", "already exists and is not this idea's project"),
    ("other idea's repo", "already exists and is not this idea's project"),
    ("file", "already exists and is not this idea's project"),
    ("symlink", "is a symbolic link"),
])
def test_someone_elses_project_blocks_triage_and_is_left_alone(clone_env, tmp_path, kind, message):
    path = one_idea(clone_env)
    target = clone_env["code"] / "notes-cli"
    _someone_elses(kind, target, tmp_path)
    listing = sorted(str(p) for p in target.rglob("*")) if target.is_dir() and not target.is_symlink() else []
    with pytest.raises(steps.IdeaBlocked):
        step("triage")
    idea = get_idea(path, "n1")
    assert idea.status == BLOCKED and message in idea.last_error and str(target) in idea.last_error
    assert (sorted(str(p) for p in target.rglob("*")) if listing else []) == listing
    assert not (tmp_path / "elsewhere").exists() or list((tmp_path / "elsewhere").iterdir()) == []

def test_a_name_taken_in_repos_yaml_or_by_another_idea_blocks_triage(clone_env, tmp_path):
    elsewhere, _ = make_remote_and_checkout(tmp_path / "other", "whatever")
    clone_env["repos_file"].write_text(f"repos:\n  - path: {elsewhere}\n    name: notes-cli\n")
    path = one_idea(clone_env)
    with pytest.raises(steps.IdeaBlocked):
        step("triage")
    assert "already has a repo named 'notes-cli'" in get_idea(path, "n1").last_error
    ideas_file(clone_env, "ideas:\n  - {id: a, title: Same Name, repo_name: same-name}\n"
                          "  - {id: b, title: Same name}\n")
    with pytest.raises(steps.IdeaBlocked):
        step("triage", "b")
    error = get_idea(clone_env["ideas_file"], "b").last_error
    assert "repo_name 'same-name' is already used by idea 'a'" in error

def test_bootstrap_creates_the_project_once(clone_env, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    target = bootstrapped(clone_env)
    assert target == clone_env["code"] / "notes-cli"
    assert log_subjects(target) == ["clone: bootstrap project on notes-cli"]
    assert git(target, "config", "clone.idea") == "n1" and git(target, "branch", "--show-current") == "main"
    files = set(git(target, "ls-files").split())
    assert files == {"notes.py", "AGENTS.md", "PROJECT_MEMORY.md", "INCIDENTS.md", "CLONE_FEATURES.md"}
    assert git(target, "status", "--porcelain") == ""
    (call,) = agent_calls(clone_env["agent_log"])
    assert call["kind"] == "bootstrap" and call["repo"] == "notes-cli" and call["cwd"] == str(target)
    assert "# This pass: bootstrap a new project" in call["prompt"] and "- Title: Notes CLI" in call["prompt"]
    assert "Keep notes in a {text} file." in call["prompt"] and "Idea id: n1" in call["prompt"]
    assert TOKEN not in str(call["env"]) and "GITHUB_TOKEN" not in call["env"]
    idea = get_idea(clone_env["ideas_file"], "n1")
    assert idea.status == TRIAGED and idea.repo_path == str(target)
    assert "bootstrapped_at" in clone_env["ideas_file"].read_text()

    step("triage")  # a later run: the directory is ours, the agent does not run again
    step("bootstrap")
    assert len(agent_calls(clone_env["agent_log"])) == 1 and len(log_subjects(target)) == 1

def test_an_agent_failure_blocks_and_the_retry_resumes_in_the_same_directory(clone_env):
    one_idea(clone_env)
    write_plan(clone_env["plan"], {"*": {"bootstrap": [{"write": "half.py", "text": "x = 1\n"},
                                                       {"exit": 3}]}})
    step("triage")
    with pytest.raises(steps.IdeaBlocked, match="exited with code 3"):
        step("bootstrap")
    idea = get_idea(clone_env["ideas_file"], "n1")
    target = clone_env["code"] / "notes-cli"
    assert idea.status == BLOCKED and idea.retry_at is None
    assert f"partial work is kept in {target}" in idea.last_error
    assert (target / "half.py").exists() and git(target, "config", "clone.idea") == "n1"
    assert not idea.due()

    set_status(clone_env["ideas_file"], "n1", TRIAGED)  # a person read last_error and asks for a retry
    write_plan(clone_env["plan"], BOOTSTRAP_PLAN)
    step("triage")
    step("bootstrap")
    assert set(git(target, "ls-files").split()) >= {"half.py", "notes.py", "AGENTS.md"}
    assert [c["cwd"] for c in agent_calls(clone_env["agent_log"])] == [str(target)] * 2

def test_publish_creates_one_private_repo_and_pushes_main(clone_env, gh):
    target = bootstrapped(clone_env)
    step("publish", gh=gh)
    repo = gh.repo("clone-bot/notes-cli")
    assert repo.private and gh.count("POST", r"^/user/repos$") == 1
    body = next(r.body for r in gh.requests if r.method == "POST")
    assert body["private"] is True and body["name"] == "notes-cli" and body["description"] == "Notes CLI"
    main = git(target, "rev-parse", "main")
    assert BareRepo(repo.bare_path).branch_sha("main") == main
    assert git(target, "remote", "get-url", "origin") == repo.bare_path.as_uri()
    assert git(target, "rev-parse", "--abbrev-ref", "main@{upstream}") == "origin/main"
    assert TOKEN not in (target / ".git" / "config").read_text()
    idea = get_idea(clone_env["ideas_file"], "n1")
    assert idea.github == "clone-bot/notes-cli" and idea.status == TRIAGED

    step("publish", gh=gh)  # again: the recorded repo is reused, nothing is created
    assert gh.count("POST") == 1 and gh.count("GET", r"^/repos/clone-bot/notes-cli$") == 1

def test_publish_into_an_organisation(clone_env, gh, monkeypatch):
    monkeypatch.setenv("CLONE_GITHUB_OWNER", "acme")
    gh.add_org("acme")
    bootstrapped(clone_env)
    step("publish", gh=gh)
    assert gh.count("POST", r"^/orgs/acme/repos$") == 1 and gh.repo("acme/notes-cli").private
    assert get_idea(clone_env["ideas_file"], "n1").github == "acme/notes-cli"

def _existing(gh: FakeGitHub, tmp_path: Path, *, private: bool = True) -> Path:
    bare = BareRepo.init(tmp_path / "preexisting" / "notes-cli.git").path
    gh.add_repo("clone-bot/notes-cli", bare_path=bare, private=private)
    return bare

def test_an_empty_repo_or_one_holding_our_history_is_reused(clone_env, gh, tmp_path):
    bare = _existing(gh, tmp_path)  # made by a run that crashed before it could record it
    target = bootstrapped(clone_env)
    git(target, "push", "--quiet", str(bare), "main")  # ...and even pushed before crashing
    commit_file(target, "more.py", "y = 2\n")
    step("publish", gh=gh)
    assert gh.count("POST") == 1 and len(list((tmp_path / "github").rglob("*.git"))) == 0
    assert BareRepo(bare).branch_sha("main") == git(target, "rev-parse", "main")
    assert get_idea(clone_env["ideas_file"], "n1").github == "clone-bot/notes-cli"

@pytest.mark.parametrize(("private", "message"), [
    (True, "holds history that is not this project's; choose another repo_name"),
    (False, "is public; ideas are only published to private repositories"),
])
def test_someone_elses_github_repo_is_not_touched(clone_env, gh, tmp_path, private, message):
    bare = _existing(gh, tmp_path, private=private)
    other, _ = make_remote_and_checkout(tmp_path / "stranger", "notes")
    git(other, "push", "--quiet", str(bare), "main")
    theirs = BareRepo(bare).branch_sha("main")
    bootstrapped(clone_env)
    with pytest.raises(steps.IdeaBlocked):
        step("publish", gh=gh)
    idea = get_idea(clone_env["ideas_file"], "n1")
    assert idea.status == BLOCKED and message in idea.last_error and "clone-bot/notes-cli" in idea.last_error
    assert idea.retry_at is None and idea.github is None
    assert BareRepo(bare).branch_sha("main") == theirs

def test_an_api_outage_blocks_with_a_retry_and_the_retry_creates_one_repo(clone_env, gh, monkeypatch):
    bootstrapped(clone_env)
    monkeypatch.setenv("CLONE_GITHUB_RETRY_MAX_WAIT_SECONDS", "0.01")
    gh.inject(r"^/user/repos$", 502, method="POST", times=5)  # outlasts the 5 attempts of one run
    with pytest.raises(steps.IdeaBlocked, match="answered 502 after 5 attempts"):
        step("publish", gh=gh)
    idea = get_idea(clone_env["ideas_file"], "n1")
    assert idea.status == BLOCKED and idea.retry_at and idea.due()
    assert "The next run retries it by itself." in idea.last_error
    step("triage")
    step("publish", gh=gh)
    step("enrol")
    assert get_idea(clone_env["ideas_file"], "n1").status == ACTIVE
    assert gh.count("POST") == 6 and len(list((gh.repos_root).rglob("*.git"))) == 1

def test_a_rejected_token_blocks_without_a_retry(clone_env, gh):
    bootstrapped(clone_env)
    with pytest.raises(steps.IdeaBlocked):
        step("publish", gh=gh, token="ghp_wrong")
    idea = get_idea(clone_env["ideas_file"], "n1")
    assert "the GitHub token was rejected" in idea.last_error and idea.retry_at is None
    assert "ghp_wrong" not in idea.last_error

def test_a_secret_in_the_first_commit_is_never_published(clone_env, gh):
    one_idea(clone_env)
    leaked = "ghp_" + "Zq8xR2vN7kP4mW9sT1yB6cH3jL5dF0gA" + "Ke"
    write_plan(clone_env["plan"], {"*": {"bootstrap": [{"write": "config.py",
                                                        "text": f"TOKEN = '{leaked}'\n"}]}})
    step("triage")
    # The session's guards run in the bootstrap as in every step: the secret never reaches main.
    with pytest.raises(steps.IdeaBlocked, match="secret scan"):
        step("bootstrap")
    idea = get_idea(clone_env["ideas_file"], "n1")
    assert "BLOCK secret in config.py:1" in idea.last_error and leaked not in idea.last_error
    target = clone_env["code"] / "notes-cli"
    assert "refs/heads/main" not in git(target, "for-each-ref", "--format=%(refname)")
    kept = git(target, "for-each-ref", "--format=%(refname)", "refs/clone/bootstrap-blocked/")
    assert kept and leaked in git(target, "show", f"{kept}:config.py")
    with pytest.raises(steps.IdeaBlocked, match="no commit on main"):
        step("publish", gh=gh)
    assert gh.total_requests == 0

def test_enrol_adds_the_repo_once_keeping_repos_yaml_as_written(clone_env, gh, tmp_path):
    mine, _ = make_remote_and_checkout(tmp_path / "mine", "widget")
    written = f"# my fleet\nrepos:\n  - path: {mine}   # by hand\n    enabled: false\n"
    clone_env["repos_file"].write_text(written)
    target = bootstrapped(clone_env)
    step("publish", gh=gh)
    step("enrol")
    text = clone_env["repos_file"].read_text()
    assert text.startswith(written)
    assert "# added by clone_ideas for idea n1" in text
    entries, problems = load_fleet(clone_env["repos_file"])
    assert problems == [] and [(e.name, e.path, e.github, e.branch) for e in entries] == [
        ("widget", str(mine), None, None), ("notes-cli", str(target), "clone-bot/notes-cli", "main")]
    assert get_idea(clone_env["ideas_file"], "n1").status == ACTIVE

    set_status(clone_env["ideas_file"], "n1", TRIAGED)
    step("enrol")
    assert load_fleet(clone_env["repos_file"])[0] == entries

def test_enrol_keeps_a_bash_json_repos_file_json(clone_env, gh, tmp_path):
    mine, _ = make_remote_and_checkout(tmp_path / "mine", "widget")
    clone_env["repos_file"].write_text(json.dumps({"repos": [{"path": str(mine), "enabled": True}]}))
    target = bootstrapped(clone_env)
    step("publish", gh=gh)
    step("enrol")
    assert json.loads(clone_env["repos_file"].read_text()) == {"repos": [
        {"path": str(mine), "enabled": True},
        {"path": str(target), "name": "notes-cli", "github": "clone-bot/notes-cli", "branch": "main"}]}


def test_an_active_idea_is_skipped(clone_env):
    one_idea(clone_env)
    set_status(clone_env["ideas_file"], "n1", ACTIVE)
    with pytest.raises(steps.StepSkipped):
        step("triage")

def test_ssh_protocol_pushes_to_the_ssh_url():
    repo = GitHubRepo("me/x", "https://github.com/me/x.git", "git@github.com:me/x.git", True)
    assert repo.url("ssh") == "git@github.com:me/x.git" and repo.url("https") == "https://github.com/me/x.git"

def test_the_incubator_prompt_fills_only_its_placeholders():
    prompt = steps.build_incubator_prompt("CORE", "{title} / {summary} / {repo_name} / {idea_id} / {other}",
                                          Idea(id="i9", title="T {x}", summary="S"), "repo")
    assert prompt == "CORE\n\nT {x} / S / repo / i9 / {other}\n"
    assert os.path.exists(steps.INCUBATOR_PROMPT)

def test_a_title_without_a_usable_name_asks_for_a_repo_name(clone_env):
    path = ideas_file(clone_env, "ideas:\n  - {id: jp, title: 日本語のメモ}\n")
    with pytest.raises(steps.IdeaBlocked):
        step("triage", "jp")
    assert "no repo_name and none can be derived from its title" in get_idea(path, "jp").last_error
    assert steps.derive_repo_name(Idea(id="x", title="  A Tiny CLI: notes!  ")) == "a-tiny-cli-notes"
