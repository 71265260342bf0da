"""ideas.yaml: the format, bad entries, the bash JSON, and writes that keep what people wrote."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from pathlib import Path

import pytest

from clone.errors import ConfigError
from clone.ideas.ideas_file import (ACTIVE, BLOCKED, NEW, TRIAGED, Idea, block, get_idea, load_ideas, set_status,
                         update_idea)

COMMENTED = """\
# Ideas for new projects. Clone turns NEW ones into private repos.
ideas:
  # the first one
  - id: notes-cli        # short and unique
    title: A tiny notes CLI
    summary: Add, list and grep notes in a text file.
    status: NEW
    repo_name: notes-cli
  # --- later ---
  - id: 7
    title: Weather bot   # keep it simple
    status: TRIAGED
# trailing comment
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ideas.yaml"
    path.write_text(text)
    return path


def test_the_documented_format_loads(tmp_path):
    ideas, problems = load_ideas(write(tmp_path, COMMENTED))
    assert problems == []
    assert ideas == [
        Idea(id="notes-cli", title="A tiny notes CLI", summary="Add, list and grep notes in a text file.",
             status=NEW, repo_name="notes-cli"),
        Idea(id="7", title="Weather bot", status=TRIAGED),  # numeric ids are strings; repo_name unset
    ]


def test_missing_status_means_new_and_missing_file_means_no_ideas(tmp_path):
    assert load_ideas(tmp_path / "absent.yaml") == ([], [])
    (idea,), _ = load_ideas(write(tmp_path, "ideas:\n  - id: a\n    title: x\n"))
    assert idea.status == NEW and idea.repo_name is None


def test_bash_json_entries_load_unchanged_and_stay_json(tmp_path):
    bash = {"ideas": [
        {"id": "a1", "title": "Link shortener", "summary": "Short links, stored in SQLite.", "status": "NEW",
         "repo_name": "shorty", "last_error": None, "repo_path": None, "github": None,
         "created_at": "2026-01-05T09:30:00Z", "updated_at": "2026-01-05T09:30:00Z"},
        {"id": "a2", "title": "Done one", "status": "ACTIVE", "repo_name": "done-one",
         "repo_path": "/home/me/code/done-one", "github": "me/done-one",
         "created_at": "2026-01-01T00:00:00Z"},
        {"id": "a3", "title": "Stuck", "status": "BLOCKED", "repo_name": "stuck", "last_error": "push failed",
         "blocked_at": "2026-01-02 10:00:00"},
    ]}
    path = write(tmp_path, json.dumps(bash, indent=2))
    ideas, problems = load_ideas(path)
    assert problems == []
    assert [(i.id, i.status, i.repo_name, i.github, i.last_error) for i in ideas] == [
        ("a1", NEW, "shorty", None, None), ("a2", ACTIVE, "done-one", "me/done-one", None),
        ("a3", BLOCKED, "stuck", None, "push failed")]

    set_status(path, "a1", TRIAGED, repo_path="/home/me/code/shorty")
    block(path, "a2", 'enrol: a "quoted" \\ error', retry=False)
    after = json.loads(path.read_text())  # a JSON file is still valid JSON after our writes
    first = after["ideas"][0]
    assert list(first)[:10] == list(bash["ideas"][0])  # key order kept, new keys appended
    assert first["status"] == TRIAGED and first["repo_path"] == "/home/me/code/shorty"
    assert first["last_error"] is None and first["created_at"] == "2026-01-05T09:30:00Z"
    assert after["ideas"][1]["last_error"] == 'enrol: a "quoted" \\ error'
    assert after["ideas"][2] == bash["ideas"][2]


@pytest.mark.parametrize(("entry", "message"), [
    ({"title": "no id"}, "entry 2 (title 'no id'): field 'id' is required"),
    ({"id": "", "title": "blank"}, "field 'id' is required"),
    ({"id": True}, "field 'id' is required"),
    ({"id": "b", "status": "DONE"}, "idea 'b' (entry 2): field 'status' 'DONE' is unknown (one of: NEW, "
                                    "TRIAGED, ACTIVE, BLOCKED)"),
    ({"id": "b", "status": "new"}, "field 'status' 'new' is unknown"),
    ({"id": "b", "colour": "red"}, "idea 'b' (entry 2): unknown field(s) colour"),
    ({"id": "b", "title": ["x"]}, "field 'title' must be text"),
    ({"id": "b", "repo_name": 5}, "field 'repo_name' must be text"),
    ({"id": "b", "github": "not a slug"}, "field 'github' must look like owner/name"),
    ({"id": "b", "created_at": "yesterday"}, "field 'created_at' is not a time"),
    ("just text", "entry 2: must be a mapping"),
])
def test_a_bad_entry_is_reported_by_id_and_skipped(tmp_path, entry, message):
    path = write(tmp_path, json.dumps({"ideas": [{"id": "good", "title": "fine"}, entry,
                                                 {"id": "also-good"}]}))
    ideas, problems = load_ideas(path)
    assert [i.id for i in ideas] == ["good", "also-good"]
    assert len(problems) == 1 and message in problems[0] and str(path) in problems[0], problems


def test_duplicate_ids_skip_every_copy_and_duplicate_repo_names_the_later_one(tmp_path):
    path = write(tmp_path, """\
ideas:
  - {id: x, repo_name: one}
  - {id: y, repo_name: Shared}
  - {id: x, repo_name: two}
  - {id: z, repo_name: shared}
  - {id: w, repo_name: other}
""")
    ideas, problems = load_ideas(path)
    assert [i.id for i in ideas] == ["y", "w"]
    assert sorted(problems) == sorted([
        f"{path}: idea 'x' (entry 1): field 'id' 'x' is used by 2 entries; ids must be unique",
        f"{path}: idea 'x' (entry 3): field 'id' 'x' is used by 2 entries; ids must be unique",
        f"{path}: idea 'z' (entry 4): field 'repo_name' 'shared' is already used by idea 'y'",
    ])
    with pytest.raises(ConfigError, match="used by 2 entries"):
        get_idea(path, "x")


@pytest.mark.parametrize(("text", "message"), [
    ("ideas: [unclosed\n", "not valid YAML"),
    ("- id: a\n", "expected a mapping with an 'ideas:' list"),
    ("ideas: {id: a}\n", "expected a mapping with an 'ideas:' list"),
    ("ideas: []\nextra: 1\n", "unknown top-level key(s) extra"),
])
def test_a_broken_file_is_an_error_and_is_never_overwritten(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_ideas(path)
    with pytest.raises(ConfigError):
        set_status(path, "a", TRIAGED)
    assert path.read_text() == text


def test_comments_and_key_order_survive_status_updates(tmp_path):
    path = write(tmp_path, COMMENTED)
    set_status(path, "notes-cli", TRIAGED, repo_name="notes-cli")
    update_idea(path, "notes-cli", {"repo_path": "/code/notes-cli", "github": "me/notes-cli"})
    set_status(path, "notes-cli", ACTIVE)
    block(path, "7", "triage: repo_name 'weather-bot' is taken", retry=False)
    text = path.read_text()
    for comment in ("# Ideas for new projects. Clone turns NEW ones into private repos.", "# the first one",
                    "# short and unique", "# keep it simple", "# trailing comment"):
        assert comment in text
    # Comments between ideas stay between them, not above the keys appended to the idea before.
    assert "\n  # --- later ---\n  - id: 7\n" in text and text.endswith("\n# trailing comment\n")
    order = ["id: notes-cli", "title: A tiny notes CLI", "status: ACTIVE", "repo_name: notes-cli",
             "repo_path: /code/notes-cli", "id: 7"]
    assert [text.index(key) for key in order] == sorted(text.index(key) for key in order)
    ideas, problems = load_ideas(path)
    assert problems == []
    assert ideas[0].status == ACTIVE and ideas[0].github == "me/notes-cli" and ideas[0].last_error is None
    assert ideas[1].status == BLOCKED and ideas[1].last_error == "triage: repo_name 'weather-bot' is taken"
    assert ideas[1].title == "Weather bot"


def test_a_concurrent_edit_by_a_person_is_not_lost(tmp_path):
    path = write(tmp_path, COMMENTED)
    seen, _ = load_ideas(path)  # the run reads the file...
    # ...a person edits it meanwhile: a new idea with a comment, a changed title...
    path.write_text(path.read_text().replace("title: Weather bot", "title: Weather bot v2")
                    + "  - id: later   # added while the run was going\n    title: Added later\n")
    set_status(path, seen[0].id, TRIAGED)  # ...and the run's write keeps all of it
    ideas, problems = load_ideas(path)
    assert problems == []
    assert [(i.id, i.status, i.title) for i in ideas] == [
        ("notes-cli", TRIAGED, "A tiny notes CLI"), ("7", TRIAGED, "Weather bot v2"),
        ("later", NEW, "Added later")]
    assert "# added while the run was going" in path.read_text()


def test_concurrent_writers_under_the_lock_lose_no_update(tmp_path):
    ids = [f"idea-{n}" for n in range(6)]
    path = write(tmp_path, "ideas:\n" + "".join(f"  - id: {i}  # {i}\n    status: NEW\n" for i in ids))
    errors: list[BaseException] = []

    def worker(idea_id: str) -> None:
        try:
            for n in range(8):
                update_idea(path, idea_id, {"summary": f"revision {n}"})
            set_status(path, idea_id, ACTIVE)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    ideas, problems = load_ideas(path)
    assert problems == []
    assert [(i.id, i.status, i.summary) for i in ideas] == [(i, ACTIVE, "revision 7") for i in ids]
    assert all(f"# {i}" in path.read_text() for i in ids)


def test_updating_an_idea_that_is_gone_names_it_and_changes_nothing(tmp_path):
    path = write(tmp_path, COMMENTED)
    with pytest.raises(ConfigError, match=r"idea 'gone' is no longer in the file"):
        set_status(path, "gone", ACTIVE)
    assert path.read_text() == COMMENTED


def test_status_changes_stamp_times_and_clear_the_error(tmp_path):
    path = write(tmp_path, COMMENTED)
    blocked = block(path, "notes-cli", "publish: GitHub answered 502", retry=True)
    assert blocked.status == BLOCKED and blocked.retry_at
    assert blocked.last_error == "publish: GitHub answered 502"
    assert "blocked_at: '" in path.read_text() and "updated_at: '" in path.read_text()
    again = set_status(path, "notes-cli", TRIAGED)
    assert again.last_error is None and again.retry_at is None
    assert "last_error:\n" in path.read_text() and "triaged_at: '" in path.read_text()  # cleared


def test_which_ideas_a_run_works_on():
    now = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.timezone.utc)
    assert Idea(id="a", status=NEW).due(now) and Idea(id="a", status=TRIAGED).due(now)
    assert not Idea(id="a", status=ACTIVE).due(now)
    assert not Idea(id="a", status=BLOCKED, last_error="x").due(now)  # waits for a person
    assert Idea(id="a", status=BLOCKED, retry_at="2026-11-24T09:59:59Z").due(now)  # may clear by itself
    assert not Idea(id="a", status=BLOCKED, retry_at="2026-11-24T11:00:00Z").due(now)
