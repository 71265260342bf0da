"""CLONE_FEATURES.md: the checklist format, parsed."""

from __future__ import annotations

import pytest

from clone.memory import backlog
from clone.memory import docs as memory
from clone.memory.backlog import Item

BACKLOG = """\
# Backlog — widget

Intro with a fake item in prose: - [ ] not at line start.

## Open

- [ ] (P1) Fix the flaky login test — CI is red twice a week
- [ ] Add a --json flag
  - [ ] (P3) document it -- users ask
* [ ] (p1) star bullet
+ [ ] plus bullet — why
1. [ ] numbered
<!-- - [ ] commented out -->
<!--
- [ ] inside a block comment
-->
```markdown
- [ ] inside a fence
```

## Done

- [x] Set up CI — done 2026-01-02
- [X] (P2) uppercase
- [ ] reopened under Done

## Someday
- [ ] (P4) unknown tag stays in the title
- [ ]
- [~] not a checkbox
-[ ] no space
"""


def test_parse_the_documented_format():
    parsed = backlog.parse(BACKLOG)
    assert parsed.counts() == {"open": 8, "done": 2}
    assert [(i.title, i.priority, i.line, i.section) for i in parsed.open] == [
        ("Fix the flaky login test", 1, 7, "Open"),
        ("Add a --json flag", 2, 8, "Open"),
        ("document it", 3, 9, "Open"),
        ("star bullet", 1, 10, "Open"),
        ("plus bullet", 2, 11, "Open"),
        ("numbered", 2, 12, "Open"),
        ("reopened under Done", 2, 25, "Done"),  # the checkbox decides, not the section
        ("(P4) unknown tag stays in the title", 2, 28, "Someday"),
    ]
    assert parsed.done == [
        Item("Set up CI", True, 2, 23, "Done", "done 2026-01-02"),
        Item("uppercase", True, 2, 24, "Done"),
    ]
    first = parsed.open[0]
    assert first.why == "CI is red twice a week"
    assert first.text == "Fix the flaky login test — CI is red twice a week"
    assert parsed.open[2].why == "users ask" and parsed.open[1].text == "Add a --json flag"


def test_top_open_by_priority_then_file_order():
    parsed = backlog.parse(BACKLOG)
    assert [i.title for i in backlog.top_open(parsed, 3)] == ["Fix the flaky login test", "star bullet",
                                                              "Add a --json flag"]
    assert backlog.top_open(parsed, 0) == [] and backlog.top_open(parsed, -1) == []
    assert len(backlog.top_open(parsed, 100)) == len(parsed.open)
    assert backlog.top_open(parsed, 100)[-1].title == "document it"


@pytest.mark.parametrize("text", ["", "\n", "# Backlog\n\n## Open\n\n## Done\n", "no items at all"])
def test_empty_backlogs(text):
    parsed = backlog.parse(text)
    assert parsed.counts() == {"open": 0, "done": 0} and backlog.top_open(parsed, 5) == []


def test_the_template_has_no_items():
    assert backlog.parse(memory.render_template(memory.BACKLOG, "w")).counts() == {"open": 0, "done": 0}


def test_crlf_and_items_before_any_section():
    parsed = backlog.parse("- [ ] (P3) first — a\r\n- [x] second\r\n## Later\r\n- [ ] third\r\n")
    assert [(i.title, i.why, i.section, i.line) for i in parsed.open] == [("first", "a", None, 1),
                                                                          ("third", "", "Later", 4)]
    assert parsed.done[0].title == "second"


@pytest.mark.parametrize(("line", "expected"), [
    ("- [ ] title", (False, 2, "title", "")),
    ("- [x] title — why — more", (True, 2, "title", "why — more")),
    ("    - [X] ( P1 ) spaced tag", (True, 1, "spaced tag", "")),
    ("\t* [ ] (P2)no space after tag", (False, 2, "no space after tag", "")),
    ("- [ ] trailing dash —", (False, 2, "trailing dash", "")),
    ("- [ ] a-b - c", (False, 2, "a-b - c", "")),
    ("- [ ] (P1)", None),
    ("- [ ]   ", None),
    ("- [] nope", None),
    ("[ ] no bullet", None),
    ("- [ ]no space", None),
    ("10) [x] numbered paren", (True, 2, "numbered paren", "")),
])
def test_parse_item(line, expected):
    assert backlog.parse_item(line) == expected


def test_inline_comments_are_cut_from_titles():
    parsed = backlog.parse("- [ ] visible <!-- hidden note --> part — why\n")
    assert parsed.open[0].title == "visible  part" and parsed.open[0].why == "why"
