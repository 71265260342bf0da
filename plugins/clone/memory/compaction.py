"""Compaction of PROJECT_MEMORY.md once it grows past ``PROJECT_MEMORY_MAX_LINES``.

The whole file is first archived, byte for byte, under ``.clone_memory_archive/``; the memory file
is then replaced by a compacted version that keeps the structure, the decisions and the recent
history. :func:`compact` is pure and deterministic; :func:`compact_file` does the two writes.

Budget rule (``N`` = max_lines, at least 20; a file of at most N lines is returned unchanged):

1. Always kept: the title (a first line starting with ``# ``) and every ``## `` heading. Only when
   there are more than ``N // 5`` sections (or too many to leave each one line) are the oldest
   sections archived whole, behind one note line after the preamble; the first Summary, Decisions,
   Evidence, Open questions and Verification history sections always stay.
2. The rest, ``B`` lines, goes to the section bodies and the preamble (the text between the title and
   the first section). Decisions is served first: whole if it fits in ``B // 2``, else that much
   (always leaving one line for each other non-empty part).
3. The others share what is left max-min fairly: a part smaller than the fair share is kept whole
   and what it leaves is shared by the larger ones (remainder lines go to the parts nearest the end
   of the file). Lines the others leave unused go back to Decisions.
4. A part that does not fit whole gets one note line ``_Older entries archived in
   .clone_memory_archive/<archive> (N lines)._`` within its budget, and keeps:
   Decisions and Verification history their newest (last) entries that fit (entries are ``### ``
   blocks, else top-level list items), plus their short intro (the template's comment) when it takes
   at most half the budget; every other part its last lines that fit. Cuts never start inside an
   HTML comment or a fenced code block, and earlier archive notes are not carried into an intro.
5. Lines a part leaves unused (entries are kept whole) go to the trimmed parts, last part first.

So every kept line is an original line, in the original order, and the result has at most N lines:
compacting it again changes nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import itertools
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from clone.memory import docs as memory
from clone.memory.docs import MarkdownLine
from clone.util.yamlio import atomic_write_text

ARCHIVE_DIR = ".clone_memory_archive"
MIN_MAX_LINES = 20
DECISIONS = "decisions"
ENTRY_SECTIONS = (DECISIONS, memory.VERIFICATION_HISTORY.casefold())
PROTECTED = ("summary", DECISIONS, "evidence", "open questions", memory.VERIFICATION_HISTORY.casefold())
NOTE = re.compile(r"^_.* archived in \.clone_memory_archive/\S+ \(\d+ lines?\)\._$")
_LIST_ITEM = re.compile(r"^(?:[-*+]|\d{1,9}[.)])(?:\s|$)")


@dataclasses.dataclass(frozen=True)
class CompactionResult:
    """What :func:`compact_file` did: where the original went and how long the file was and is."""

    path: Path
    archive: Path
    lines_before: int
    lines_after: int


@dataclasses.dataclass(frozen=True)
class _Part:
    start: int  # body range in the file's lines, end exclusive
    end: int
    entries: bool  # trimmed by whole entries (Decisions, Verification history) rather than by lines

    @property
    def size(self) -> int:
        return self.end - self.start


def compact(text: str, max_lines: int, *, archive_name: str) -> str:
    """``text`` (PROJECT_MEMORY.md) cut to at most ``max_lines`` lines by the budget rule above."""
    if max_lines < MIN_MAX_LINES:
        raise ValueError(f"cannot compact to {max_lines} lines: PROJECT_MEMORY_MAX_LINES must be at least "
                         f"{MIN_MAX_LINES}")
    lines = memory.split_lines(text)
    if len(lines) <= max_lines:
        return text
    scanned = memory.scan(lines)
    found = memory.sections(scanned)
    first = found[0].start if found else len(lines)
    title = 1 if first > 0 and lines[0].startswith("# ") else 0
    preamble = _Part(title, first, entries=False)
    kept = _keep_sections(found, max_lines, room=max_lines - title - (1 if preamble.size else 0))
    dropped = [s for s in found if s not in kept]
    parts = [preamble] + [_Part(s.start + 1, s.end, s.title.casefold() in ENTRY_SECTIONS) for s in kept]
    budget = max_lines - title - len(kept) - (1 if dropped else 0)
    decisions = next((i for i, s in enumerate(kept, start=1) if s.title.casefold() == DECISIONS), None)
    allocations = _allocate([p.size for p in parts], budget, decisions)
    where = f"{ARCHIVE_DIR}/{archive_name}"
    note = f"_Older entries archived in {where} ({{}} lines)._"
    bodies = [_trim(lines, scanned, part, allocation, note)
              for part, allocation in zip(parts, allocations, strict=True)]
    for i in reversed(range(len(parts))):  # lines a part could not use (entries come whole) go to another
        slack = budget - sum(map(len, bodies))
        if slack and len(bodies[i]) < parts[i].size:
            bodies[i] = _trim(lines, scanned, parts[i], len(bodies[i]) + slack, note)
    out = lines[:title] + bodies[0]
    if dropped:
        archived = sum(s.end - s.start for s in dropped)
        out.append(f"_{len(dropped)} older section(s) archived in {where} ({archived} lines)._")
    for section, body in zip(kept, bodies[1:], strict=True):
        out += [lines[section.start], *body]
    newline = memory.newline_of(text)
    return newline.join(out) + newline


def _keep_sections(found: Sequence[memory.Section], max_lines: int, *, room: int) -> list[memory.Section]:
    """All sections, or the protected ones plus the newest others that fit (see rule 1)."""
    protected: dict[str, memory.Section] = {}
    for section in found:
        if section.title.casefold() in PROTECTED:
            protected.setdefault(section.title.casefold(), section)
    others = [s for s in found if s not in protected.values()]
    limit = max(max_lines // 5, len(protected))
    for count in range(len(others), -1, -1):
        keep = set(protected.values()) | set(others[len(others) - count:])
        dropped = len(found) - len(keep)
        if len(keep) <= limit and 2 * len(keep) + (1 if dropped else 0) <= room:
            return [s for s in found if s in keep]
    raise AssertionError("unreachable: the protected sections always fit")  # pragma: no cover


def _allocate(demands: list[int], budget: int, favoured: int | None) -> list[int]:
    """Lines per part: ``favoured`` (Decisions) first, up to half; max-min fair shares for the rest."""
    others = [i for i in range(len(demands)) if i != favoured]
    non_empty = sum(1 for i in others if demands[i])
    first = 0 if favoured is None else min(demands[favoured], budget // 2, budget - non_empty)
    shares = _water_fill([demands[i] for i in others], budget - first)
    allocations = [0] * len(demands)
    for i, share in zip(others, shares, strict=True):
        allocations[i] = share
    if favoured is not None:
        allocations[favoured] = min(demands[favoured], budget - sum(shares))
    return allocations


def _water_fill(demands: list[int], budget: int) -> list[int]:
    if sum(demands) <= budget:
        return list(demands)
    allocations = [0] * len(demands)
    remaining, left = budget, len(demands)
    order = sorted(range(len(demands)), key=lambda i: (demands[i], i))
    for position, i in enumerate(order):
        share = remaining // left
        if demands[i] > share:
            rest = sorted(order[position:])
            extra = remaining - share * len(rest)
            for rank, j in enumerate(reversed(rest)):
                allocations[j] = share + (1 if rank < extra else 0)
            break
        allocations[i] = demands[i]
        remaining -= demands[i]
        left -= 1
    return allocations


def _trim(lines: list[str], scanned: list[MarkdownLine], part: _Part, allocation: int,
          note: str) -> list[str]:
    """The part's lines within ``allocation``: whole when it fits, else note + what rule 4 keeps."""
    if part.size <= allocation:
        return lines[part.start:part.end]
    if allocation <= 0:
        return []
    budget = allocation - 1
    starts = _entry_starts(scanned, part) if part.entries else []
    if not starts:
        cut = _line_cut(scanned, part.start, part.end, budget)
        return [note.format(cut - part.start)] + lines[cut:part.end]
    intro = [lines[i] for i in range(part.start, starts[0]) if not NOTE.match(lines[i])]
    if 2 * len(intro) > budget:
        intro = []
    tail_budget = budget - len(intro)
    cut = part.end
    for start in reversed(starts):
        if part.end - start > tail_budget:
            break
        cut = start
    if cut == part.end:  # not even the newest entry fits: its last lines
        cut = _line_cut(scanned, starts[-1], part.end, tail_budget)
    archived = part.size - len(intro) - (part.end - cut)
    return intro + [note.format(archived)] + lines[cut:part.end]


def _entry_starts(scanned: list[MarkdownLine], part: _Part) -> list[int]:
    """Where the part's entries start: ``### `` headings, else top-level list items."""
    visible = [i for i in range(part.start, part.end)
               if not scanned[i].hidden_start and not scanned[i].fenced]
    headings = [i for i in visible if scanned[i].text.startswith("### ")]
    return headings or [i for i in visible if _LIST_ITEM.match(scanned[i].text)]


def _line_cut(scanned: list[MarkdownLine], start: int, end: int, budget: int) -> int:
    """The earliest line from which ``[cut, end)`` fits ``budget`` and starts outside comments and code."""
    for cut in range(max(start, end - budget), end):
        if not scanned[cut].hidden_start:
            return cut
    return end


def archive_name(now: dt.datetime, attempt: int = 1) -> str:
    """``PROJECT_MEMORY-20261124T100000Z.md``; ``-2``, ``-3``... for later attempts at the same second."""
    now = (now if now.tzinfo else now.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)
    suffix = "" if attempt == 1 else f"-{attempt}"
    return f"{Path(memory.MEMORY).stem}-{now:%Y%m%dT%H%M%SZ}{suffix}.md"


def compact_file(workdir: Path, max_lines: int, now: dt.datetime) -> CompactionResult | None:
    """Archive and compact ``workdir``'s PROJECT_MEMORY.md if it has more than ``max_lines`` lines.

    The archive (the exact original bytes, in a new file: an existing archive is never overwritten)
    is written before the memory file is replaced, both atomically. ``None`` when under the limit.
    """
    path = workdir / memory.MEMORY
    try:
        original = path.read_bytes()
    except FileNotFoundError:
        return None
    text = original.decode("utf-8", errors="replace")
    lines_before = len(memory.split_lines(text))
    if lines_before <= max_lines:
        return None
    for attempt in itertools.count(1):
        name = archive_name(now, attempt)
        archive = workdir / ARCHIVE_DIR / name
        if archive.exists() or archive.is_symlink():
            continue
        compacted = compact(text, max_lines, archive_name=name)
        if _write_new_file(archive, original):
            break
    atomic_write_text(path, compacted)
    return CompactionResult(path=path, archive=archive, lines_before=lines_before,
                            lines_after=len(memory.split_lines(compacted)))


def _write_new_file(target: Path, data: bytes) -> bool:
    """Write ``data`` to ``target`` all at once, unless ``target`` exists (then ``False``)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, target)  # unlike os.replace, fails instead of overwriting
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
