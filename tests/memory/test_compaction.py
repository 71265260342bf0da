"""PROJECT_MEMORY.md compaction: pure, deterministic, lossless thanks to the archive."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from clone.memory import compaction
from clone.memory import docs as memory

NAME = "PROJECT_MEMORY-20261124T100000Z.md"
NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.timezone.utc)
HEADINGS = ["## Summary", "## Decisions", "## Evidence", "## Open questions", "## Verification history"]


def build(decisions: int = 5, evidence: int = 5, runs: int = 5, questions: int = 2) -> str:
    """The template, filled in the way passes fill it."""
    text = memory.render_template(memory.MEMORY, "widget")
    fill = {
        "## Evidence": [f"- 2026-01-{i % 28 + 1:02d} — decision {i} — because {i}" for i in range(decisions)],
        "## Open questions": [f"- 2026-01-01 (verified) fact {i} — make test -> ok" for i in range(evidence)],
        "## Verification history": [f"- question {i}" for i in range(questions)],
    }
    for before, lines in fill.items():  # each list goes at the end of the section above ``before``
        text = text.replace(f"\n{before}", "".join(f"{line}\n" for line in lines) + f"\n{before}")
    for i in range(runs):
        checks = [("test", "make test", 0, 1.5, True), ("lint", "make lint", 1, 0.5, False)]
        text = memory.add_verification_entry(text, memory.VerificationEntry(
            NOW + dt.timedelta(hours=i), f"scheduled__{i}", f"{i:040x}", "pass", checks, f"outcome {i}"))
    return text


def generated(line: str) -> bool:
    return bool(compaction.NOTE.match(line))


def is_subsequence(kept: list[str], original: list[str]) -> bool:
    rest = iter(original)
    return all(any(line == candidate for candidate in rest) for line in kept)


def check_invariants(original: str, max_lines: int) -> str:
    """Compact ``original`` and assert everything the module promises; returns the result."""
    out = compaction.compact(original, max_lines, archive_name=NAME)
    out_lines, original_lines = memory.split_lines(out), memory.split_lines(original)
    assert len(out_lines) <= max_lines
    assert is_subsequence([line for line in out_lines if not generated(line)], original_lines)
    assert compaction.compact(original, max_lines, archive_name=NAME) == out  # deterministic
    assert compaction.compact(out, max_lines, archive_name="OTHER.md") == out  # fixed point
    # No cut opened a comment or a code block that swallows what follows: the headings still parse.
    headings = [out_lines[s.start] for s in memory.sections(memory.scan(out_lines))]
    original_headings = [original_lines[s.start] for s in memory.sections(memory.scan(original_lines))]
    assert is_subsequence(headings, original_headings)
    assert headings == [line for line in out_lines if line.startswith("## ") and line != "## fake heading"]
    return out


# --- compact --------------------------------------------------------------------------------------

def test_under_the_limit_nothing_changes():
    text = build()
    assert compaction.compact(text, len(memory.split_lines(text)), archive_name=NAME) == text
    assert compaction.compact("", 20, archive_name=NAME) == ""


def test_too_small_a_limit_is_refused():
    with pytest.raises(ValueError, match="at least 20"):
        compaction.compact(build(), 19, archive_name=NAME)


def test_structure_decisions_and_newest_runs_are_kept():
    text = build(decisions=12, evidence=150, runs=60)
    out = check_invariants(text, 200)
    lines = out.splitlines()
    assert lines[0] == "# Project memory — widget"
    assert [line for line in lines if line.startswith("## ")] == HEADINGS
    decisions = text[text.index("## Decisions"):text.index("## Evidence")]
    assert decisions in out  # the whole section, template comment included
    assert "### 2026-11-26 21:00 UTC · run scheduled__59" in out  # the newest run
    kept_runs = [line for line in lines if line.startswith("### ")]
    assert kept_runs == [line for line in text.splitlines() if line.startswith("### ")][-len(kept_runs):]
    assert len(kept_runs) >= 10
    assert "fact 149 " in out and "fact 0 " not in out
    notes = [line for line in lines if generated(line)]
    assert len(notes) == 2 and all(f".clone_memory_archive/{NAME} (" in note for note in notes)
    assert "<!-- Appended by the orchestrator" in out  # the short intro stays
    assert out.index("<!-- Appended") < out.index(notes[1]) < out.index(kept_runs[0])


def test_archive_notes_count_the_lines_left_out():
    text = build(decisions=3, evidence=100, runs=3)
    out = check_invariants(text, 60)
    notes = [line for line in out.splitlines() if generated(line)]
    archived = sum(int(note.rsplit("(", 1)[1].split()[0]) for note in notes)
    assert archived == len(memory.split_lines(text)) - len(memory.split_lines(out)) + len(notes)
    assert len(memory.split_lines(out)) == 60  # what whole entries leave unused goes to the others


def test_decisions_too_long_keep_their_newest_entries():
    text = build(decisions=300, evidence=10, runs=5)
    out = check_invariants(text, 100)
    decisions = out[out.index("## Decisions"):out.index("## Evidence")].splitlines()
    items = [line for line in decisions if line.startswith("- ")]
    assert items[-1].startswith("- 2026-01-20 — decision 299 ")
    assert 30 <= len(items) <= 50  # about half the budget
    assert [int(line.split()[4]) for line in items] == list(range(300 - len(items), 300))


def test_multi_line_entries_are_kept_whole():
    body = "".join(f"- decision {i}\n  continued {i}\n  and more {i}\n" for i in range(40))
    text = f"# M\n## Decisions\n{body}## Evidence\n" + "".join(f"- e{i}\n" for i in range(40))
    out = check_invariants(text, 50)
    decisions = out[out.index("## Decisions"):out.index("## Evidence")].splitlines()[2:]
    assert len(decisions) % 3 == 0 and decisions[0].startswith("- decision ")
    assert decisions[-1] == "  and more 39"


def test_an_entry_longer_than_its_budget_keeps_its_last_lines():
    history = "### one huge run\n" + "".join(f"- check {i}\n" for i in range(100))
    out = check_invariants(f"# M\n## Verification history\n{history}", 30)
    assert out.splitlines()[-1] == "- check 99" and "### one huge run" not in out


def test_plain_lines_still_compact():
    text = "".join(f"note {i}\n" for i in range(1000))
    out = check_invariants(text, 50)
    lines = out.splitlines()
    assert generated(lines[0]) and "(951 lines)" in lines[0]
    assert lines[1:] == [f"note {i}" for i in range(951, 1000)]
    titled = check_invariants("# Notes\n" + text, 50)
    assert titled.splitlines()[0] == "# Notes" and titled.splitlines()[-1] == "note 999"


def test_cuts_never_start_inside_code_or_comments():
    evidence = ("".join(f"- fact {i}\n" for i in range(40))
                + "```\n" + "".join(f"code {i}\n" for i in range(30)) + "```\n"
                + "<!--\n" + "".join(f"hidden {i}\n" for i in range(20)) + "-->\n- last fact\n")
    text = f"# M\n## Evidence\n{evidence}## Open questions\n- q\n"
    for max_lines in range(20, 90, 3):
        out = check_invariants(text, max_lines)
        body = out[out.index("## Evidence"):out.index("## Open questions")]
        assert body.count("```") % 2 == 0 and body.count("<!--") == body.count("-->")


def test_crlf_stays_crlf():
    text = build(evidence=100).replace("\n", "\r\n")
    out = check_invariants(text, 60)
    assert out.count("\n") == out.count("\r\n") == len(memory.split_lines(out))


def test_many_sections_keep_the_template_ones_and_the_newest():
    sessions = "".join(f"## Session {i}\n- did {i}\n- saw {i}\n" for i in range(100))
    text = build() + sessions
    out = check_invariants(text, 60)
    headings = [line for line in out.splitlines() if line.startswith("## ")]
    assert headings[:5] == HEADINGS and headings[5:] == [f"## Session {i}" for i in range(93, 100)]
    note = next(line for line in out.splitlines() if generated(line) and "section(s)" in line)
    assert note == f"_93 older section(s) archived in .clone_memory_archive/{NAME} (279 lines)._"


def test_recompaction_does_not_pile_up_notes():
    text = build(decisions=3, evidence=5, runs=40)
    once = check_invariants(text, 80)
    grown = once
    for i in range(40):
        later = memory.VerificationEntry(NOW, f"later__{i}", "f" * 40, "pass", [])
        grown = memory.add_verification_entry(grown, later)
    twice = check_invariants(grown, 80)
    assert sum(1 for line in twice.splitlines() if generated(line)) == 1
    assert "run later__39 " in twice


@pytest.mark.parametrize("seed", range(12))
def test_random_documents_keep_every_promise(seed):
    rng = random.Random(seed)
    pieces = ["# Project memory"]
    titles = ["Summary", "Decisions", "Evidence", "Open questions", "Verification history", "Notes",
              "Decisions"]
    for _ in range(rng.randint(0, 12)):
        pieces.append(f"## {rng.choice(titles)}")
        for _ in range(rng.randint(0, 40)):
            pieces.append(rng.choice([
                "", "- item", "  continued", "### run", "text", "<!-- c -->", "<!--\nmulti\n-->",
                "```\n## fake heading\ncode\n```", "1. numbered",
                "_Older entries archived in .clone_memory_archive/OLD.md (3 lines)._"]))
    text = "\n".join(pieces) + "\n"
    for max_lines in (20, 21, 34, 55, 89, 144):
        check_invariants(text, max_lines)


# --- compact_file ---------------------------------------------------------------------------------

def test_compact_file_archives_the_exact_bytes_first(tmp_path):
    original = build(evidence=300).replace("\n", "\r\n").encode() + "caf\u00e9 \xff".encode("latin-1")
    (tmp_path / memory.MEMORY).write_bytes(original)
    result = compaction.compact_file(tmp_path, 100, NOW)
    assert result is not None
    assert result.archive == tmp_path / ".clone_memory_archive" / NAME
    assert result.archive.read_bytes() == original
    assert result.path == tmp_path / memory.MEMORY
    assert result.lines_before == original.count(b"\n") + 1 and result.lines_after <= 100
    compacted = result.path.read_text(encoding="utf-8")
    assert result.lines_after == len(memory.split_lines(compacted))
    assert f".clone_memory_archive/{NAME}" in compacted
    assert sorted(p.name for p in result.archive.parent.iterdir()) == [NAME]  # no temporary files left


def test_compact_file_under_the_limit_or_missing_does_nothing(tmp_path):
    assert compaction.compact_file(tmp_path, 50, NOW) is None
    (tmp_path / memory.MEMORY).write_text(build())
    assert compaction.compact_file(tmp_path, 500, NOW) is None
    assert not (tmp_path / ".clone_memory_archive").exists()


def test_an_existing_archive_is_never_overwritten(tmp_path):
    archive_dir = tmp_path / ".clone_memory_archive"
    archive_dir.mkdir()
    (archive_dir / NAME).write_text("first")
    (archive_dir / "PROJECT_MEMORY-20261124T100000Z-2.md").write_text("second")
    (tmp_path / memory.MEMORY).write_text(build(evidence=200))
    result = compaction.compact_file(tmp_path, 60, NOW.replace(tzinfo=None))
    assert result is not None and result.archive.name == "PROJECT_MEMORY-20261124T100000Z-3.md"
    assert (archive_dir / NAME).read_text() == "first"
    assert "PROJECT_MEMORY-20261124T100000Z-3.md (" in (tmp_path / memory.MEMORY).read_text()


def test_a_bad_limit_writes_nothing(tmp_path):
    (tmp_path / memory.MEMORY).write_text(build(evidence=200))
    with pytest.raises(ValueError):
        compaction.compact_file(tmp_path, 10, NOW)
    assert not (tmp_path / ".clone_memory_archive").exists()


def test_archive_names_are_utc():
    paris = dt.timezone(dt.timedelta(hours=1))
    assert compaction.archive_name(dt.datetime(2026, 11, 24, 11, 0, 5, tzinfo=paris)) == \
        "PROJECT_MEMORY-20261124T100005Z.md"
    assert compaction.archive_name(NOW, 2) == "PROJECT_MEMORY-20261124T100000Z-2.md"
