"""AGENTS.md's protected core policy: extracted, checked and restored after a pass."""

from __future__ import annotations

import pytest

from clone.memory import core_policy
from clone.memory import docs as memory
from clone.memory.core_policy import BEGIN, END

REGION = f"{BEGIN}\n## Core policy\n- never push\n{END}"
BEFORE = f"# AGENTS\n\nintro\n\n{REGION}\n\n## Notes\n- build: make\n"


def agents(tmp_path, text: str | bytes) -> None:
    path = tmp_path / memory.AGENTS
    path.write_bytes(text if isinstance(text, bytes) else text.encode())


def read(tmp_path) -> str:
    return (tmp_path / memory.AGENTS).read_bytes().decode()


# --- extract --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "region"), [
    (BEFORE, REGION),
    (REGION, REGION),
    (f"x\r\n{BEGIN}\r\nrule\r\n{END}\r\ny\r\n", f"{BEGIN}\r\nrule\r\n{END}"),
    (f"  {BEGIN}\nrule\n{END}  ", f"  {BEGIN}\nrule\n{END}  "),
    (f"{BEGIN}\n{END}", f"{BEGIN}\n{END}"),
    (f"```\n{BEGIN}\n```\n{REGION}", REGION),  # a marker shown in a code block is no marker
    ("", None),
    ("# no markers\n", None),
    (f"{BEGIN}\nrule\n", None),
    (f"rule\n{END}\n", None),
    (f"{END}\nrule\n{BEGIN}\n", None),
    (f"{REGION}\n{REGION}\n", None),
    (f"{BEGIN}\n{BEGIN}\n{END}\n", None),
    (f"see {BEGIN} inline\n{END}\n", None),  # markers count only on a line of their own
])
def test_extract(text, region):
    assert core_policy.extract(text) == region


def test_the_shipped_template_has_a_region():
    region = core_policy.extract(memory.render_template(memory.AGENTS, "w"))
    assert region is not None and "**Safety rules.**" in region


# --- check_and_restore ----------------------------------------------------------------------------

def test_untouched_or_edited_outside_is_fine(tmp_path):
    agents(tmp_path, BEFORE)
    assert core_policy.check_and_restore(tmp_path, BEFORE) is None
    edited = BEFORE.replace("- build: make", "- build: make build\n- test: make test")
    agents(tmp_path, edited)
    assert core_policy.check_and_restore(tmp_path, BEFORE) is None
    assert read(tmp_path) == edited


def test_a_changed_region_is_restored_keeping_edits_outside(tmp_path):
    changed = BEFORE.replace("- never push", "- push when you like\n- and force")
    agents(tmp_path, changed.replace("make", "tox"))
    message = core_policy.check_and_restore(tmp_path, BEFORE)
    assert message is not None
    assert "core policy" in message and "1 line(s) removed, 2 added" in message
    assert "outside it were kept" in message
    assert read(tmp_path) == BEFORE.replace("make", "tox")
    assert core_policy.check_and_restore(tmp_path, BEFORE) is None


def test_a_changed_region_at_the_end_of_the_file(tmp_path):
    before = f"# A\n{REGION}"
    agents(tmp_path, f"# A changed\n{BEGIN}\nnothing\n{END}")
    assert core_policy.check_and_restore(tmp_path, before)
    assert read(tmp_path) == f"# A changed\n{REGION}"


@pytest.mark.parametrize(("now", "problem"), [
    ("# AGENTS\n\nno more policy\n", "markers were removed"),
    (BEFORE.replace(BEGIN + "\n", ""), "begin marker was removed"),
    (BEFORE.replace("\n" + END, ""), "end marker was removed"),
    (BEFORE + "\n" + REGION + "\n", "duplicated (2 begin, 2 end marker(s))"),
    (BEFORE.replace(BEGIN, "@@").replace(END, BEGIN).replace("@@", END), "wrong order"),
    ("", "markers were removed"),
])
def test_broken_markers_restore_the_whole_file(tmp_path, now, problem):
    agents(tmp_path, now)
    message = core_policy.check_and_restore(tmp_path, BEFORE)
    assert message is not None and problem in message and "discarded" in message
    assert read(tmp_path) == BEFORE


def test_a_deleted_file_is_restored(tmp_path):
    message = core_policy.check_and_restore(tmp_path, BEFORE)
    assert message is not None and "deleted" in message
    assert read(tmp_path) == BEFORE


def test_nothing_to_protect_without_a_region(tmp_path):
    agents(tmp_path, "changed")
    for before in ("", "# our own AGENTS.md\n", f"{BEGIN}\nhalf a region\n", f"{REGION}\n{REGION}"):
        assert core_policy.check_and_restore(tmp_path, before) is None
    assert read(tmp_path) == "changed"
    assert core_policy.check_and_restore(tmp_path / "missing", "no region") is None


def test_line_endings_alone_are_no_violation(tmp_path):
    crlf = BEFORE.replace("\n", "\r\n")
    agents(tmp_path, crlf)
    assert core_policy.check_and_restore(tmp_path, BEFORE) is None
    assert read(tmp_path) == crlf


def test_a_crlf_file_gets_a_crlf_region_back(tmp_path):
    crlf = BEFORE.replace("\n", "\r\n")
    agents(tmp_path, crlf.replace("never push", "always push"))
    assert core_policy.check_and_restore(tmp_path, BEFORE) is not None
    assert read(tmp_path) == crlf
    agents(tmp_path, BEFORE.replace("never push", "always push"))
    assert core_policy.check_and_restore(tmp_path, crlf) is not None
    assert read(tmp_path) == BEFORE


def test_snapshot_keeps_the_exact_text(tmp_path):
    assert core_policy.snapshot(tmp_path) == ""
    agents(tmp_path, b"a\r\nb\r\n")
    assert core_policy.snapshot(tmp_path) == "a\r\nb\r\n"


def test_incident_entry():
    incident = core_policy.incident("AGENTS.md: changed", context="run r1")
    text = incident.render()
    assert incident.kind == "policy violation" and "- What happened: AGENTS.md: changed" in text
    assert "- Context: run r1" in text and memory.count_incidents(text) == 1


def test_the_pass_flow_on_the_template(tmp_path):
    memory.ensure_docs(tmp_path, "widget")
    before = core_policy.snapshot(tmp_path)
    text = before.replace("- Never run destructive commands.\n", "").replace("_unknown_", "pytest -q", 1)
    agents(tmp_path, text)
    message = core_policy.check_and_restore(tmp_path, before)
    assert message is not None and "1 line(s) removed, 0 added" in message
    restored = read(tmp_path)
    assert core_policy.extract(restored) == core_policy.extract(before) and "- Lint: pytest -q" in restored
