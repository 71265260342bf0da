"""The memory docs: templates, incidents, the Markdown reader, the verification history."""

from __future__ import annotations

import datetime as dt

import pytest

from clone.memory import docs as memory

WHEN = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.timezone.utc)


def entry(run_id: str = "manual__x", checks=(), outcome: str = "", *, when: dt.datetime = WHEN,
          sha: str = "abc123def4567890", kind: str = "pass") -> memory.VerificationEntry:
    return memory.VerificationEntry(when=when, run_id=run_id, sha=sha, pass_kind=kind, checks=list(checks),
                                    outcome=outcome)


# --- docs and incidents ---------------------------------------------------------------------------

def test_ensure_docs_creates_missing_and_keeps_existing(tmp_path):
    (tmp_path / memory.AGENTS).write_text("mine\n")
    assert memory.ensure_docs(tmp_path, "widget") == [memory.MEMORY, memory.INCIDENTS, memory.BACKLOG]
    assert (tmp_path / memory.AGENTS).read_text() == "mine\n"
    assert "widget" in (tmp_path / memory.MEMORY).read_text()
    assert memory.ensure_docs(tmp_path, "widget") == []


def test_append_incident_creates_the_file_and_is_counted(tmp_path):
    incident = memory.Incident("push conflict", "main moved", "x\n  y", "because", "rebase first", "sha abc")
    path = memory.append_incident(tmp_path, "widget", incident)
    memory.append_incident(tmp_path, "widget", incident)
    text = path.read_text()
    assert text.startswith("# Incidents — widget") and "- What happened: x y" in text
    assert memory.count_incidents(text) == 2


def test_append_incident_keeps_crlf_and_a_missing_final_newline(tmp_path):
    (tmp_path / memory.INCIDENTS).write_bytes(b"# Incidents\r\n\r\n## old one\r\n- x")
    memory.append_incident(tmp_path, "w", memory.Incident("k", "t", "w", "r", "p"))
    data = (tmp_path / memory.INCIDENTS).read_bytes()
    assert data.startswith(b"# Incidents\r\n\r\n## old one\r\n- x\n\n## ")
    assert memory.count_incidents(data.decode()) == 2


@pytest.mark.parametrize(("text", "count"), [
    ("", 0),
    ("# Incidents\n\nnothing yet\n", 0),
    ("## a\n## b\n### not an entry\n# title\n", 2),
    ("<!--\n## example\n-->\n## real\n", 1),
    ("<!-- ## inline --> text\n## real <!-- note -->\n", 1),
    ("```\n## in code\n```\n~~~~\n## in tilde code\n~~~\n## still code\n~~~~\n## real\n", 1),
    ("## a\r\n## b\r\n", 2),
    ("##\n##no-space\n", 1),
])
def test_count_incidents(text, count):
    assert memory.count_incidents(text) == count


def test_count_incidents_ignores_the_template_example():
    assert memory.count_incidents(memory.render_template(memory.INCIDENTS, "w")) == 0


def test_read_doc_and_read_exact(tmp_path):
    assert memory.read_doc(tmp_path, memory.MEMORY) == ""
    assert memory.read_exact(tmp_path / memory.MEMORY) is None
    (tmp_path / memory.MEMORY).write_bytes(b"a\r\nb\xff\n")
    assert memory.read_exact(tmp_path / memory.MEMORY) == "a\r\nb\ufffd\n"


# --- the Markdown reader --------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "lines"), [
    ("", []),
    ("\n", [""]),
    ("a", ["a"]),
    ("a\nb\n", ["a", "b"]),
    ("a\r\nb\r\n\r\n", ["a", "b", ""]),
    ("a\rb\n", ["a\rb"]),
])
def test_split_lines(text, lines):
    assert memory.split_lines(text) == lines


def test_newline_of():
    assert memory.newline_of("a\nb\n") == "\n"
    assert memory.newline_of("a\r\nb\r\n") == "\r\n"
    assert memory.newline_of("") == "\n"
    assert memory.newline_of("a\r\nb\nc\n") == "\n"


def test_scan_comments_and_fences():
    lines = ["keep <!-- gone --> this", "start <!-- open", "inside", "close --> tail", "```py", "<!-- code",
             "```", "<!-- a --><!-- b -->c", "~~~", "```", "~~~", "after"]
    scanned = memory.scan(lines)
    assert [line.visible for line in scanned] == [
        "keep  this", "start ", "", " tail", "", "", "", "c", "", "", "", "after"]
    assert [line.hidden_start for line in scanned] == [
        False, False, True, True, False, True, True, False, False, True, True, False]
    assert [line.fenced for line in scanned] == [
        False, False, False, False, True, True, True, False, True, True, True, False]


def test_a_fence_inside_a_comment_is_no_fence():
    scanned = memory.scan(["<!--", "```", "-->", "## heading"])
    assert memory.is_section_heading(scanned[3]) and not scanned[1].fenced


def test_sections_and_find_section():
    lines = ["# T", "intro", "## One", "x", "```", "## not a heading", "```", "## Two ##", "y"]
    found = memory.sections(memory.scan(lines))
    assert found == [memory.Section("One", 2, 7), memory.Section("Two", 7, 9)]
    assert memory.find_section(found, "two") == found[1]
    assert memory.find_section(found, "three") is None
    assert memory.sections(memory.scan([])) == []


# --- verification history -------------------------------------------------------------------------

def test_entry_rendering():
    checks = [("test", "make test", 0, 1.234, True), ("lint", "ruff\ncheck .", 1, 0.4, False),
              memory.Check("e2e", "pytest -m slow", None, 600, False), ("types", "mypy", 3, 2, True)]
    lines = entry(checks=checks, outcome="committed and pushed").render()
    assert lines == [
        "### 2026-11-24 10:00 UTC · run manual__x · abc123def456 · pass",
        "- PASS test: make test (1.2s)",
        "- FAIL lint: ruff check . (exit 1, 0.4s)",
        "- FAIL e2e: pytest -m slow (no exit code, 600.0s)",
        "- PASS types: mypy (exit 3, 2.0s)",
        "- Outcome: committed and pushed",
    ]


def test_entry_without_checks_naive_time_and_no_sha():
    naive = entry(when=dt.datetime(2026, 1, 2, 3, 4), sha="", kind="autofix").render()
    assert naive == ["### 2026-01-02 03:04 UTC · run manual__x · no commit · autofix", "- no checks detected"]
    paris = dt.timezone(dt.timedelta(hours=1))
    header = entry(when=dt.datetime(2026, 1, 2, 3, 4, tzinfo=paris)).render()[0]
    assert header.startswith("### 2026-01-02 02:04 UTC")


def test_entries_go_at_the_end_of_the_template_section(tmp_path):
    memory.ensure_docs(tmp_path, "widget")
    memory.append_verification_history(tmp_path, entry("run1"))
    memory.append_verification_history(tmp_path, entry("run2", checks=[("test", "make test", 0, 1.0, True)]))
    text = (tmp_path / memory.MEMORY).read_text()
    tail = text[text.index("## Verification history"):]
    assert tail == (
        "## Verification history\n\n"
        "<!-- Appended by the orchestrator after each pass. Do not edit or remove entries. -->\n\n"
        "### 2026-11-24 10:00 UTC · run run1 · abc123def456 · pass\n- no checks detected\n\n"
        "### 2026-11-24 10:00 UTC · run run2 · abc123def456 · pass\n- PASS test: make test (1.0s)\n")


def test_entries_go_before_a_following_section():
    text = "# M\n\n## Verification history\n\n### old\n- x\n\n\n## Notes\nkeep\n"
    out = memory.add_verification_entry(text, entry("new"))
    assert out == ("# M\n\n## Verification history\n\n### old\n- x\n\n"
                   "### 2026-11-24 10:00 UTC · run new · abc123def456 · pass\n- no checks detected\n\n\n"
                   "## Notes\nkeep\n")
    tight = memory.add_verification_entry("## Verification history\n## Notes\n", entry("n"))
    assert tight.splitlines() == ["## Verification history", "", entry("n").render()[0],
                                  "- no checks detected", "", "## Notes"]


def test_a_missing_section_is_added_at_the_end():
    assert memory.add_verification_entry("# M\n\nfree text\n\n\n", entry()) == (
        "# M\n\nfree text\n\n## Verification history\n\n"
        "### 2026-11-24 10:00 UTC · run manual__x · abc123def456 · pass\n- no checks detected\n")
    assert memory.add_verification_entry("", entry()).startswith("## Verification history\n\n### ")
    in_code = "```\n## Verification history\n```"
    out = memory.add_verification_entry(in_code, entry())
    assert out.startswith(in_code + "\n\n## Verification history\n")


def test_crlf_files_stay_crlf(tmp_path):
    (tmp_path / memory.MEMORY).write_bytes(b"# M\r\n\r\n## verification HISTORY\r\n\r\n## Next\r\n")
    memory.append_verification_history(tmp_path, entry())
    data = (tmp_path / memory.MEMORY).read_bytes()
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert data.endswith(b"- no checks detected\r\n\r\n## Next\r\n")


def test_a_missing_memory_file_is_created_from_the_template(tmp_path):
    path = memory.append_verification_history(tmp_path, entry(), repo_name="widget")
    text = path.read_text()
    assert text.startswith("# Project memory — widget") and text.endswith("- no checks detected\n")
