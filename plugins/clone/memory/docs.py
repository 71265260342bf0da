"""The durable docs every repo keeps: AGENTS.md, PROJECT_MEMORY.md, INCIDENTS.md, CLONE_FEATURES.md.

The orchestrator makes sure they exist (from the templates in ``include/templates/``), writes
INCIDENTS.md entries for the failures it sees itself and appends PROJECT_MEMORY.md's verification
history after each pass. The small Markdown reader here (lines, HTML comments, fenced code, ``## ``
sections) is shared by compaction, the backlog parser and the incident counter.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from clone.config.settings import TEMPLATES_DIR
from clone.util.yamlio import atomic_write_text

AGENTS = "AGENTS.md"
MEMORY = "PROJECT_MEMORY.md"
INCIDENTS = "INCIDENTS.md"
BACKLOG = "CLONE_FEATURES.md"
DOCS = (AGENTS, MEMORY, INCIDENTS, BACKLOG)
VERIFICATION_HISTORY = "Verification history"


def render_template(doc: str, repo_name: str) -> str:
    return (TEMPLATES_DIR / doc).read_text(encoding="utf-8").format(repo_name=repo_name)


def ensure_docs(workdir: Path, repo_name: str) -> list[str]:
    """Create whichever memory docs are missing; never touch one that exists. Returns those created."""
    created = []
    for doc in DOCS:
        target = workdir / doc
        if not target.exists():
            atomic_write_text(target, render_template(doc, repo_name))
            created.append(doc)
    return created


@dataclasses.dataclass(frozen=True)
class Incident:
    """One failure the orchestrator saw, in INCIDENTS.md's entry format."""

    kind: str
    title: str
    what_happened: str
    root_cause: str
    prevention: str
    context: str = ""

    def render(self, when: dt.datetime | None = None) -> str:
        when = when or dt.datetime.now(dt.timezone.utc)
        lines = [
            f"## {when:%Y-%m-%d %H:%M} UTC — {self.kind}: {self.title}",
            f"- What happened: {_one_paragraph(self.what_happened)}",
            f"- Root cause: {_one_paragraph(self.root_cause)}",
            f"- Prevention: {_one_paragraph(self.prevention)}",
        ]
        if self.context:
            lines.append(f"- Context: {_one_paragraph(self.context)}")
        return "\n".join(lines) + "\n"


def _one_paragraph(text: str, limit: int = 1500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def append_incident(workdir: Path, repo_name: str, incident: Incident) -> Path:
    """Append ``incident`` to the repo's INCIDENTS.md (created from the template if missing)."""
    path = workdir / INCIDENTS
    text = read_exact(path)
    if text is None:
        text = render_template(INCIDENTS, repo_name)
    if text and not text.endswith("\n"):
        text += "\n"
    atomic_write_text(path, text + "\n" + incident.render())
    return path


def count_incidents(text: str) -> int:
    """How many entries INCIDENTS.md holds: its ``## `` headings outside HTML comments and code blocks."""
    return sum(1 for line in scan(split_lines(text)) if is_section_heading(line))


def read_doc(workdir: Path, doc: str) -> str:
    path = workdir / doc
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def read_exact(path: Path) -> str | None:
    """``path``'s text with its line endings untouched (CRLF stays CRLF); ``None`` when it does not exist."""
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None


# --- Markdown structure --------------------------------------------------------------------------

def split_lines(text: str) -> list[str]:
    """``text``'s lines without their endings (``\\n`` or ``\\r\\n``); a final newline adds no empty line."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def newline_of(text: str) -> str:
    """The line ending ``text`` mostly uses: ``\\r\\n`` or ``\\n``."""
    crlf = text.count("\r\n")
    return "\r\n" if crlf and crlf * 2 >= text.count("\n") else "\n"


class MarkdownLine(NamedTuple):
    """One line of a Markdown file, with what a reader of the rendered file would see of it."""

    text: str  # the line as written, without its line ending
    visible: str  # the line with HTML comments cut out; "" inside a fenced code block and for its fences
    hidden_start: bool  # the line starts inside an HTML comment or a fenced code block
    fenced: bool  # the line is part of a fenced code block (its fences included)


_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")


def scan(lines: Sequence[str]) -> list[MarkdownLine]:
    """Classify ``lines``: what is inside HTML comments (``<!-- ... -->``) and fenced code blocks."""
    result = []
    in_comment = False
    fence = ""  # the opening fence while inside a fenced code block
    for line in lines:
        if fence:
            stripped = line.strip()
            if stripped.startswith(fence[0]) and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                fence = ""
            result.append(MarkdownLine(line, "", True, True))
            continue
        if not in_comment and (match := _FENCE.match(line)):
            fence = match.group(1)
            result.append(MarkdownLine(line, "", False, True))
            continue
        hidden_start, visible, rest = in_comment, [], line
        while rest:
            if in_comment:
                end = rest.find("-->")
                if end < 0:
                    break
                rest, in_comment = rest[end + 3:], False
            else:
                start = rest.find("<!--")
                if start < 0:
                    visible.append(rest)
                    break
                visible.append(rest[:start])
                rest, in_comment = rest[start + 4:], True
        result.append(MarkdownLine(line, "".join(visible), hidden_start, False))
    return result


def is_section_heading(line: MarkdownLine) -> bool:
    """A level-2 ATX heading (``## Title``) that a reader sees."""
    heading = line.text.startswith("## ") or line.text.rstrip() == "##"
    return heading and not line.hidden_start and not line.fenced


def heading_title(text: str) -> str:
    """``## Open questions ##`` -> ``Open questions``."""
    return text.lstrip("#").strip().rstrip("#").strip()


class Section(NamedTuple):
    """A ``## `` section: its heading's index in the file's lines and the end (exclusive) of its body."""

    title: str
    start: int
    end: int


def sections(scanned: Sequence[MarkdownLine]) -> list[Section]:
    """The file's ``## `` sections in order; lines before the first one are its preamble."""
    starts = [i for i, line in enumerate(scanned) if is_section_heading(line)]
    if not starts:
        return []
    ends = starts[1:] + [len(scanned)]
    return [Section(heading_title(scanned[s].text), s, e) for s, e in zip(starts, ends, strict=True)]


def find_section(found: Sequence[Section], title: str) -> Section | None:
    """The first section titled ``title`` (case-insensitive)."""
    return next((s for s in found if s.title.casefold() == title.casefold()), None)


# --- Verification history ------------------------------------------------------------------------

class Check(NamedTuple):
    """One check the orchestrator ran after a pass (a plain 5-tuple works too)."""

    name: str
    command: str
    exit_code: int | None
    duration: float
    ok: bool


@dataclasses.dataclass(frozen=True)
class VerificationEntry:
    """One pass's line in PROJECT_MEMORY.md's verification history: when, which run, which sha, what ran."""

    when: dt.datetime
    run_id: str
    sha: str
    pass_kind: str
    checks: Sequence[tuple[str, str, int | None, float, bool]]
    outcome: str = ""

    def render(self) -> list[str]:
        """The entry's Markdown lines: a ``### `` header, one bullet per check, the outcome."""
        when = self.when if self.when.tzinfo else self.when.replace(tzinfo=dt.timezone.utc)
        when = when.astimezone(dt.timezone.utc)
        sha = "".join(self.sha.split())[:12] or "no commit"
        run, kind = _one_paragraph(self.run_id, 200), _one_paragraph(self.pass_kind, 40)
        lines = [f"### {when:%Y-%m-%d %H:%M} UTC · run {run} · {sha} · {kind}"]
        for name, command, exit_code, duration, ok in (Check(*check) for check in self.checks):
            details = [] if exit_code == 0 else ["no exit code" if exit_code is None else f"exit {exit_code}"]
            details.append(f"{duration:.1f}s")
            lines.append(f"- {'PASS' if ok else 'FAIL'} {_one_paragraph(name, 80)}: "
                         f"{_one_paragraph(command, 300)} ({', '.join(details)})")
        if not self.checks:
            lines.append("- no checks detected")
        if self.outcome.strip():
            lines.append(f"- Outcome: {_one_paragraph(self.outcome, 500)}")
        return lines


def add_verification_entry(text: str, entry: VerificationEntry) -> str:
    """``text`` with ``entry`` at the end of its ``## Verification history`` section (added if missing)."""
    newline = newline_of(text)
    lines = split_lines(text)
    section = find_section(sections(scan(lines)), VERIFICATION_HISTORY)
    if section is None:
        while lines and not lines[-1].strip():
            lines.pop()
        lines += [*([""] if lines else []), f"## {VERIFICATION_HISTORY}", "", *entry.render()]
        return newline.join(lines) + newline
    end = section.end
    while end > section.start + 1 and not lines[end - 1].strip():
        end -= 1
    after = lines[end:]
    if after and after[0].strip():
        after.insert(0, "")
    return newline.join([*lines[:end], "", *entry.render(), *after]) + newline


def append_verification_history(workdir: Path, entry: VerificationEntry, *,
                                repo_name: str | None = None) -> Path:
    """Append ``entry`` to the repo's PROJECT_MEMORY.md (created from the template if missing)."""
    path = workdir / MEMORY
    text = read_exact(path)
    if text is None:
        text = render_template(MEMORY, repo_name or workdir.name)
    atomic_write_text(path, add_verification_entry(text, entry))
    return path
