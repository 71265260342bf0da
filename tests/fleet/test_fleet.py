"""repos.yaml: validation of every kind of bad input, loading the bash JSON format, merge-on-write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clone.errors import ConfigError
from clone.fleet.repos_file import RepoEntry, load_fleet, merge_discovered
from tests.repos import git


def checkout(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir(parents=True)
    git(path, "init", "--quiet", "-b", "main")
    return path


def test_bash_json_format_loads_unchanged(tmp_path):
    repo = checkout(tmp_path, "widget")
    source = tmp_path / "repos.yaml"
    source.write_text(json.dumps({"repos": [{"path": str(repo)}]}))
    entries, problems = load_fleet(source)
    assert problems == []
    assert [(e.name, e.path, e.enabled, e.remote, e.branch) for e in entries] == [
        ("widget", str(repo), True, "origin", None)]


def test_all_fields(tmp_path):
    repo = checkout(tmp_path, "w")
    source = tmp_path / "repos.yaml"
    source.write_text(f"""
repos:
  - path: {repo}
    name: widget
    enabled: false
    branch: develop
    remote: upstream
    github: acme/widget
    tasks_per_repo: 3
    setup: ["uv sync --locked", "npm ci"]
    checks_network: true
    deploy_key: widget_deploy
""")
    (entry,), problems = load_fleet(source)
    assert problems == []
    assert entry.to_dict() == {"path": str(repo), "url": None, "name": "widget", "enabled": False, "branch": "develop",
                               "remote": "upstream", "github": "acme/widget", "tasks_per_repo": 3,
                               "steering": None, "verify": None, "push_mode": None,
                               "setup": ("uv sync --locked", "npm ci"), "checks_network": True,
                               "deploy_key": "widget_deploy"}


def test_bad_setup_names_file_entry_and_field(tmp_path):
    repo = checkout(tmp_path, "w")
    source = tmp_path / "repos.yaml"
    source.write_text(f"repos:\n  - path: {repo}\n    setup: [\"uv sync\", 3]\n")
    entries, problems = load_fleet(source)
    assert entries == []
    assert problems == [f"{source}: entry 1 ({repo}): field 'setup': repos.yaml setup[1]: expected a command "
                        "string, got int"]


@pytest.mark.parametrize(("entry", "message"), [
    ({"path": "relative/dir"}, "field 'path' must be absolute"),
    ({"path": "/nonexistent/clone-test"}, "does not exist"),
    ({"name": "x"}, "give exactly one of 'path' (a local checkout) and 'url' (a git remote URL), got neither"),
    ({"path": "{good}", "colour": "red"}, "unknown field(s) colour"),
    ({"path": "{good}", "name": "../evil"}, "field 'name'"),
    ({"path": "{good}", "enabled": "yes"}, "field 'enabled' must be bool"),
    ({"path": "{good}", "checks_network": "yes"}, "field 'checks_network' must be bool, got 'yes'"),
    ({"path": "{good}", "tasks_per_repo": 0}, "field 'tasks_per_repo' must be at least 1"),
    ({"path": "{good}", "tasks_per_repo": True}, "field 'tasks_per_repo' must be int"),
    ({"path": "{good}", "github": "not a slug"}, "field 'github' must look like owner/name"),
    ({"path": "{good}", "branch": "-rf"}, "field 'branch'"),
    ({"path": "{good}", "remote": "--upload-pack=x"}, "field 'remote'"),
    ("just a string", "must be a mapping"),
])
def test_bad_entry_is_reported_and_others_still_load(tmp_path, entry, message):
    good = checkout(tmp_path, "good")
    other = checkout(tmp_path, "other")
    if isinstance(entry, dict):
        entry = {k: (str(good) if v == "{good}" else v) for k, v in entry.items()}
    source = tmp_path / "repos.yaml"
    source.write_text(json.dumps({"repos": [entry, {"path": str(other)}]}))
    entries, problems = load_fleet(source)
    assert [e.name for e in entries] == ["other"]
    assert len(problems) == 1
    assert problems[0].startswith(f"{source}: entry 1")
    assert message in problems[0]


def test_not_a_git_checkout(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    source = tmp_path / "repos.yaml"
    source.write_text(json.dumps({"repos": [{"path": str(plain)}]}))
    assert "is not a git checkout" in load_fleet(source)[1][0]


def test_duplicate_names_and_paths(tmp_path):
    a = checkout(tmp_path / "one", "app")
    b = checkout(tmp_path / "two", "app")
    source = tmp_path / "repos.yaml"
    source.write_text(json.dumps({"repos": [{"path": str(a)}, {"path": str(b)}, {"path": str(a), "name": "z"}]}))
    entries, problems = load_fleet(source)
    assert [e.path for e in entries] == [str(a)]
    assert "entry 2" in problems[0] and "field 'name' 'app' duplicates" in problems[0]
    assert "entry 3" in problems[1] and "field 'path'" in problems[1] and "duplicates" in problems[1]


@pytest.mark.parametrize("text", ["repos: {a: 1}\n", "- path: /x\n", "other: []\n", "repos: [\n"])
def test_bad_top_level_is_an_error_naming_the_file(tmp_path, text):
    source = tmp_path / "repos.yaml"
    source.write_text(text)
    with pytest.raises(ConfigError, match=str(source)):
        load_fleet(source)


def test_missing_file_is_an_empty_fleet(tmp_path):
    assert load_fleet(tmp_path / "nope.yaml") == ([], [])


def test_merge_keeps_user_keys_comments_and_order(tmp_path):
    mine = checkout(tmp_path / "code", "mine")
    new = checkout(tmp_path / "code", "new")
    source = tmp_path / "repos.yaml"
    original = f"""# my fleet
repos:
  # the important one
  - path: {mine}
    enabled: false   # paused while I refactor
    github: me/mine
"""
    source.write_text(original)
    added = merge_discovered(source, [mine, new])
    assert added == [str(new)]
    text = source.read_text()
    assert text.startswith(original)
    assert f"path: {new}" in text
    entries, problems = load_fleet(source)
    assert problems == []
    assert [(e.name, e.enabled, e.github) for e in entries] == [("mine", False, "me/mine"), ("new", True, None)]
    # Idempotent: nothing new, nothing written.
    before = source.stat().st_mtime_ns
    assert merge_discovered(source, [mine, new]) == []
    assert source.stat().st_mtime_ns == before


def test_merge_disambiguates_same_directory_names(tmp_path):
    a = checkout(tmp_path / "work", "api")
    b = checkout(tmp_path / "play", "api")
    source = tmp_path / "repos.yaml"
    merge_discovered(source, [a, b])
    entries, problems = load_fleet(source)
    assert problems == []
    assert sorted(e.name for e in entries) == ["api", "work-api"]


def test_merge_refuses_to_overwrite_a_broken_file(tmp_path):
    source = tmp_path / "repos.yaml"
    source.write_text("repos: [\n  unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        merge_discovered(source, [checkout(tmp_path, "x")])
    assert source.read_text() == "repos: [\n  unclosed"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".repos.yaml")] == []


def test_steering_and_verify(tmp_path):
    repo = checkout(tmp_path, "w")
    source = tmp_path / "repos.yaml"
    source.write_text(f"repos:\n  - path: {repo}\n    steering: docs/steer.md\n    verify: ['make lint', 'pytest -q']\n"
                      f"  - path: {checkout(tmp_path, 'x')}\n    verify: []\n")
    (a, b), problems = load_fleet(source)
    assert problems == []
    assert a.steering == "docs/steer.md" and a.verify == ("make lint", "pytest -q") and b.verify == ()
    assert RepoEntry.from_dict(a.to_dict()) == a


@pytest.mark.parametrize(("verify", "message"), [
    ("make test", "field 'verify' must be list"),
    (["make test && rm -rf /"], "field 'verify': "),
    (["unclosed 'quote"], "field 'verify': "),
])
def test_bad_verify(tmp_path, verify, message):
    repo = checkout(tmp_path, "w")
    source = tmp_path / "repos.yaml"
    source.write_text(json.dumps({"repos": [{"path": str(repo), "verify": verify}]}))
    entries, problems = load_fleet(source)
    assert entries == [] and message in problems[0] and "entry 1" in problems[0]


@pytest.mark.parametrize("field,value", [("name", "widget\n"), ("github", "acme/w\n"), ("branch", "main\n"),
                                         ("remote", "origin\n")])
def test_trailing_newline_is_not_a_valid_name(tmp_path, field, value):
    repo = checkout(tmp_path, "w")
    source = tmp_path / "repos.yaml"
    source.write_text(json.dumps({"repos": [{"path": str(repo), field: value}]}))
    entries, problems = load_fleet(source)
    assert entries == [] and f"field '{field}'" in problems[0]


def test_bash_json_file_stays_json_after_a_merge(tmp_path):
    mine = checkout(tmp_path / "code", "mine")
    new = checkout(tmp_path / "code", "new")
    source = tmp_path / "repos.yaml"
    source.write_text(json.dumps({"repos": [{"path": str(mine), "enabled": False}]}))
    assert merge_discovered(source, [mine, new]) == [str(new)]
    assert json.loads(source.read_text()) == {"repos": [{"path": str(mine), "enabled": False},
                                                        {"path": str(new)}]}
