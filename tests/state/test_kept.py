"""The merge of repos.yaml/ideas.yaml with what is kept in Variables, and its validation (unit level: the
Variables are a dict here; tests/workflow/test_readonly_bundle.py runs the real ones under Airflow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clone.errors import ConfigError
from clone.fleet import repos_file
from clone.ideas import ideas_file
from clone.state import kept, store


@pytest.fixture
def variables(monkeypatch) -> dict[str, str]:
    """Variables as Airflow stores them (JSON text), seen as from inside a task."""
    values: dict[str, str] = {}

    def read(name):
        if name not in values:
            return None
        try:
            return json.loads(values[name])
        except ValueError as e:
            raise ConfigError(f"Variable {name}: not JSON ({e})") from None

    monkeypatch.setattr(store, "in_task", lambda: True)
    monkeypatch.setattr(store, "names", lambda prefix: [k for k in values if k.startswith(prefix)])
    monkeypatch.setattr(kept, "read", read)
    monkeypatch.setattr(kept, "write", lambda name, value: values.__setitem__(name, json.dumps(value)))
    return values


def checkout(path: Path) -> Path:
    (path / ".git").mkdir(parents=True)
    return path


def read_only(path: Path) -> None:
    path.chmod(0o444)
    path.parent.chmod(0o555)


@pytest.fixture
def folder(tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    yield bundle
    bundle.chmod(0o755)


def test_the_knob_and_what_counts_as_writable(folder, monkeypatch):
    path = folder / "repos.yaml"
    path.write_text("repos: []\n")
    assert kept.file_writes() == "auto" and kept.writable(path)
    monkeypatch.setenv("CLONE_FILE_WRITES", "sometimes")
    with pytest.raises(ConfigError, match="CLONE_FILE_WRITES='sometimes' is not one of auto, file, variables"):
        kept.file_writes()
    monkeypatch.setenv("CLONE_FILE_WRITES", "auto")
    read_only(path)
    assert not kept.writable(path)  # even for root: no write bit is read-only
    assert not kept.use_variables(path)  # outside a task: the file write itself says why it cannot
    monkeypatch.setenv("CLONE_FILE_WRITES", "variables")
    with pytest.raises(ConfigError, match="reachable only from an Airflow task"):
        kept.use_variables(path)


def test_discovered_and_enrolled_repos_join_the_file_which_wins(folder, variables, tmp_path):
    path = folder / "repos.yaml"
    mine = checkout(tmp_path / "code" / "mine")
    path.write_text(f"repos:\n  - path: {mine}\n    branch: dev\n")
    read_only(path)
    found = [mine, checkout(tmp_path / "code" / "new"), checkout(tmp_path / "other" / "new")]
    assert repos_file.merge_discovered(path, found) == [str(found[1]), str(found[2])]
    assert path.read_text() == f"repos:\n  - path: {mine}\n    branch: dev\n"
    assert json.loads(variables[kept.DISCOVERED]) == {"repos": [
        {"path": str(found[1]), "name": "new"}, {"path": str(found[2]), "name": "other-new"}]}
    assert repos_file.merge_discovered(path, found) == []  # nothing new the second time
    assert repos_file.enrol_repo(path, checkout(tmp_path / "code" / "idea"), "idea", github="me/idea",
                                 branch="main")
    assert not repos_file.enrol_repo(path, tmp_path / "code" / "idea", "idea")
    with pytest.raises(ConfigError, match="field 'name' 'mine' is already taken"):
        repos_file.enrol_repo(path, tmp_path / "elsewhere", "mine")
    entries, problems = repos_file.load_fleet(path)
    assert problems == []
    assert [(e.name, e.branch) for e in entries] == [("mine", "dev"), ("new", None), ("other-new", None),
                                                    ("idea", "main")]
    assert entries[3].github == "me/idea"


def test_bad_kept_values_are_problems_naming_the_variable_and_field(folder, variables, tmp_path):
    path = folder / "repos.yaml"
    for name in "acdy":
        checkout(tmp_path / name)
    path.write_text(f"repos:\n  - path: {tmp_path}/a\n")
    variables[kept.DISCOVERED] = json.dumps({"repos": [{"path": "relative/b"}, {"path": f"{tmp_path}/c"},
                                                       {"path": f"{tmp_path}/d", "name": "a"}]})
    variables["clone.fleet.enrolled.x"] = "{not json"
    variables["clone.fleet.enrolled.y"] = json.dumps({"path": f"{tmp_path}/y", "push_mode": "sideways"})
    entries, problems = repos_file.load_fleet(path)
    assert [e.name for e in entries] == ["a", "c"]
    assert problems[0].startswith("Variable clone.fleet.enrolled.x: not JSON")
    assert problems[1].startswith("Variable clone.fleet.discovered: entry 1 (relative/b): field 'path' must be "
                                  "absolute")
    assert "Variable clone.fleet.discovered: entry 3" in problems[2] and "field 'name' 'a'" in problems[2]
    assert problems[3].startswith("Variable clone.fleet.enrolled.y") and "push_mode" in problems[3]
    variables[kept.DISCOVERED] = json.dumps(["no", "mapping"])
    assert repos_file.load_fleet(path)[1][0] == ("Variable clone.fleet.discovered: expected a JSON object, "
                                                 "got list")


IDEAS = """ideas:
  - id: one
    title: The first   # a comment that stays
    status: NEW
  - id: two
    title: The second
"""


def test_idea_statuses_are_kept_and_a_users_later_edit_wins(folder, variables):
    path = folder / "ideas.yaml"
    path.write_text(IDEAS)
    read_only(path)
    ideas_file.set_status(path, "one", ideas_file.TRIAGED, repo_name="first")
    ideas_file.block(path, "one", "bootstrap: the agent failed", retry=False)
    assert path.read_text() == IDEAS
    value = json.loads(variables["clone.ideas.one"])
    assert value["fields"]["status"] == "BLOCKED" and value["base"]["status"] == "NEW"
    found = {idea.id: idea for idea in ideas_file.load_ideas(path)[0]}
    assert (found["one"].status, found["one"].repo_name, found["one"].last_error) == \
        ("BLOCKED", "first", "bootstrap: the agent failed")
    assert found["two"].status == "NEW" and not found["one"].due()
    # The user sets TRIAGED in the file (say, in the git repo the bundle syncs from): the file wins.
    path.chmod(0o644)
    path.write_text(IDEAS.replace("status: NEW", "status: TRIAGED"))
    found = {idea.id: idea for idea in ideas_file.load_ideas(path)[0]}
    assert found["one"].status == "TRIAGED" and found["one"].repo_name == "first" and found["one"].due()


def test_bad_idea_variables_name_the_variable_and_field(folder, variables):
    path = folder / "ideas.yaml"
    path.write_text(IDEAS)
    variables["clone.ideas.one"] = json.dumps({"id": "one", "fields": {"status": "DONE"}, "base": {}})
    variables["clone.ideas.two"] = json.dumps({"id": "two", "fields": ["status"]})
    ideas, problems = ideas_file.load_ideas(path)
    assert [(i.id, i.status) for i in ideas] == [("one", "NEW"), ("two", "NEW")]
    assert problems[0].startswith("Variable clone.ideas.one: field 'fields': field 'status' 'DONE' is unknown")
    assert problems[1].startswith("Variable clone.ideas.two: field 'fields' must be a JSON object of the "
                                  "idea's keys")
    read_only(path)
    with pytest.raises(ConfigError, match="idea 'gone' is no longer in the file"):
        ideas_file.update_idea(path, "gone", {"status": "ACTIVE"})
    assert "clone.ideas.gone" not in variables


def test_the_note_line_names_the_variables():
    assert kept.note_line([]) is None
    line = kept.note_line([f"clone.ideas.i{n}" for n in range(10)])
    assert line.startswith("KEPT IN VARIABLES: clone.ideas.i0, ") and line.count("clone.ideas.") == 8
    assert "and 2 more" in line and "export_state.py" in line
