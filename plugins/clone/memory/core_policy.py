"""The protected core policy of AGENTS.md: passes may not rewrite it.

The region runs from a line reading ``<!-- clone:core-policy:begin -->`` to a line reading
``<!-- clone:core-policy:end -->`` (markers inside fenced code blocks do not count). The pass
snapshots AGENTS.md before the agent runs; afterwards :func:`check_and_restore` puts the region
back if the agent changed, removed or duplicated it, or deleted the file, and says what happened so
the pass can record an incident. Line-ending changes alone (LF <-> CRLF) are not a violation.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import NamedTuple

from clone.memory import docs as memory
from clone.util.yamlio import atomic_write_text

BEGIN = "<!-- clone:core-policy:begin -->"
END = "<!-- clone:core-policy:end -->"


class _Markers(NamedTuple):
    begins: list[int]
    ends: list[int]

    @property
    def intact(self) -> bool:
        return len(self.begins) == 1 and len(self.ends) == 1 and self.begins[0] < self.ends[0]

    def problem(self) -> str:
        if not self.begins and not self.ends:
            return "its core policy markers were removed"
        if len(self.begins) > 1 or len(self.ends) > 1:
            return (f"its core policy markers were duplicated ({len(self.begins)} begin, "
                    f"{len(self.ends)} end marker(s))")
        if not self.begins or not self.ends:
            return f"its core policy {'begin' if not self.begins else 'end'} marker was removed"
        return "its core policy markers are in the wrong order (end before begin)"


def _markers(lines: list[str]) -> _Markers:
    scanned = memory.scan(lines)
    begins = [i for i, line in enumerate(scanned) if not line.fenced and line.text.strip() == BEGIN]
    ends = [i for i, line in enumerate(scanned) if not line.fenced and line.text.strip() == END]
    return _Markers(begins, ends)


def extract(text: str) -> str | None:
    """The core policy region of ``text``, markers included (no final line ending).

    ``None`` when there is no well-formed region: a marker missing or duplicated, or the end
    marker before the begin marker.
    """
    lines = text.split("\n")
    markers = _markers([line.removesuffix("\r") for line in lines])
    if not markers.intact:
        return None
    region = "\n".join(lines[markers.begins[0]: markers.ends[0] + 1])
    return region.removesuffix("\r")


def snapshot(workdir: Path) -> str:
    """AGENTS.md as it is now, line endings untouched ("" when missing): the ``before_text`` of a pass."""
    return memory.read_exact(workdir / memory.AGENTS) or ""


def check_and_restore(workdir: Path, before_text: str) -> str | None:
    """Restore AGENTS.md's core policy if the pass changed it; describe the violation, else ``None``.

    ``before_text`` is AGENTS.md before the agent ran. Without a region in it there is nothing to
    protect. When the markers are still intact only the region is put back and the agent's edits
    elsewhere in AGENTS.md are kept; otherwise the whole file is restored from ``before_text``.
    """
    original = extract(before_text)
    if original is None:
        return None
    path = workdir / memory.AGENTS
    now_text = memory.read_exact(path)
    if now_text is None:
        atomic_write_text(path, before_text)
        return f"{memory.AGENTS} was deleted; it was restored as it was before the pass."
    now_lines = now_text.split("\n")
    markers = _markers([line.removesuffix("\r") for line in now_lines])
    if not markers.intact:
        atomic_write_text(path, before_text)
        return (f"{memory.AGENTS}: {markers.problem()}; the file was restored as it was before the pass "
                "(the agent's other edits to it were discarded).")
    begin, end = markers.begins[0], markers.ends[0]
    current = "\n".join(now_lines[begin: end + 1]).removesuffix("\r")
    if _normalized(current) == _normalized(original):
        return None
    newline = "\r\n" if now_lines[end].endswith("\r") else "\n"
    restored = newline.join(memory.split_lines(original)).split("\n")
    if newline == "\r\n":  # the last line takes the ending of the end marker line it replaces
        restored[-1] += "\r"
    atomic_write_text(path, "\n".join([*now_lines[:begin], *restored, *now_lines[end + 1:]]))
    return (f"{memory.AGENTS}: the protected core policy section was changed "
            f"({_diffstat(original, current)}); the section was restored and the agent's edits outside it "
            "were kept.")


def incident(description: str, *, context: str = "") -> memory.Incident:
    """The INCIDENTS.md entry for a core policy violation that :func:`check_and_restore` reported."""
    return memory.Incident(
        kind="policy violation",
        title="the core policy of AGENTS.md was changed",
        what_happened=description,
        root_cause="The agent edited the protected core policy region of AGENTS.md (between the "
                   f"{BEGIN} and {END} markers), which only people may change.",
        prevention="Never edit the core policy region of AGENTS.md; record proposed policy changes under "
                   "Open questions in PROJECT_MEMORY.md instead. The orchestrator restores the region after "
                   "every pass.",
        context=context,
    )


def _normalized(text: str) -> list[str]:
    return memory.split_lines(text)


def _diffstat(before: str, after: str) -> str:
    removed = added = 0
    matcher = difflib.SequenceMatcher(a=_normalized(before), b=_normalized(after), autojunk=False)
    for tag, a_start, a_end, b_start, b_end in matcher.get_opcodes():
        if tag != "equal":
            removed += a_end - a_start
            added += b_end - b_start
    return f"{removed} line(s) removed, {added} added"
