"""The backlog, CLONE_FEATURES.md: a Markdown checklist that agents and people share.

One item per task-list line, ``- [ ] <title> — <why>`` (open) or ``- [x] ...`` (done), with an
optional ``(P1)``/``(P2)``/``(P3)`` tag starting the title (P2 when absent). ``*``, ``+`` and
numbered bullets, an uppercase ``X`` and indented sub-items are accepted; items inside HTML
comments or fenced code blocks are not items. The checkbox decides open or done, whatever the
section; ``## `` headings only group items.
"""

from __future__ import annotations

import dataclasses
import re

from clone.memory import docs as memory

DEFAULT_PRIORITY = 2
_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+\[([ xX])\]\s+(.*)$")
_PRIORITY = re.compile(r"^\(\s*[Pp]([1-3])\s*\)\s*")
_WHY = re.compile(r"\s+(?:—|--)(?:\s+|$)")


@dataclasses.dataclass(frozen=True)
class Item:
    """One checklist line: its title (priority tag removed), whether it is ticked, where it is."""

    title: str
    done: bool
    priority: int = DEFAULT_PRIORITY  # 1 urgent, 2 normal, 3 nice to have
    line: int = 0  # 1-based line number in the file
    section: str | None = None  # the ``## `` heading above it, if any
    why: str = ""  # the text after ``—`` (or ``--``): why it matters, how we know it is done

    @property
    def text(self) -> str:
        """The item as written after the checkbox, priority tag aside: ``title — why``."""
        return f"{self.title} — {self.why}" if self.why else self.title


@dataclasses.dataclass(frozen=True)
class Backlog:
    """The open and done items of a backlog file, each in file order."""

    open: list[Item]
    done: list[Item]

    def counts(self) -> dict[str, int]:
        return {"open": len(self.open), "done": len(self.done)}


def parse_item(text: str) -> tuple[bool, int, str, str] | None:
    """``(done, priority, title, why)`` of one visible Markdown line, or ``None`` if it is no item."""
    match = _ITEM.match(text)
    if match is None:
        return None
    body = match.group(2).strip()
    priority = DEFAULT_PRIORITY
    if tag := _PRIORITY.match(body):
        priority, body = int(tag.group(1)), body[tag.end():]
    title, *why = _WHY.split(body.strip(), maxsplit=1)
    title, why = title.strip(), why[0].strip() if why else ""
    return (match.group(1) != " ", priority, title, why) if title else None


def parse(text: str) -> Backlog:
    """Every item of ``text`` (CLONE_FEATURES.md), split into open and done."""
    open_items: list[Item] = []
    done_items: list[Item] = []
    section = None
    for number, line in enumerate(memory.scan(memory.split_lines(text)), start=1):
        if memory.is_section_heading(line):
            section = memory.heading_title(line.visible) or None
            continue
        parsed = parse_item(line.visible)
        if parsed is None:
            continue
        done, priority, title, why = parsed
        item = Item(title=title, done=done, priority=priority, line=number, section=section, why=why)
        (done_items if done else open_items).append(item)
    return Backlog(open=open_items, done=done_items)


def top_open(backlog: Backlog, n: int) -> list[Item]:
    """The ``n`` open items to do first: by priority, then in file order."""
    return sorted(backlog.open, key=lambda item: (item.priority, item.line))[: max(n, 0)]
