"""``git diff --unified=0`` output read into one :class:`FileDiff` per file: paths (renames, C-quoted
names), added and removed lines with their numbers, binary-ness. Pure: no git, no rules."""

from __future__ import annotations

import dataclasses
import re

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v", '"': '"', "\\": "\\"}


@dataclasses.dataclass(frozen=True)
class FileDiff:
    """One file's part of a ``--unified=0`` diff: ``old_path`` is None if added, ``new_path`` if deleted."""

    old_path: str | None
    new_path: str | None
    binary: bool = False
    added: tuple[tuple[int, str], ...] = ()    # (line number in the new file, text)
    removed: tuple[tuple[int, str], ...] = ()  # (line number in the old file, text)

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or ""


def parse_diff(text: str) -> list[FileDiff]:
    """Parse ``git diff --unified=0`` output (renames as ``rename from``/``rename to``)."""
    files: list[FileDiff] = []
    current: dict | None = None
    old_left = new_left = old_no = new_no = 0
    for line in text.split("\n"):
        if current is not None and (old_left or new_left):
            if line.startswith("-") and old_left:
                current["removed"].append((old_no, line[1:]))
                old_no, old_left = old_no + 1, old_left - 1
                continue
            if line.startswith("+") and new_left:
                current["added"].append((new_no, line[1:]))
                new_no, new_left = new_no + 1, new_left - 1
                continue
            if line.startswith("\\"):
                continue
            old_left = new_left = 0  # a short hunk: read on as headers
        if line.startswith("diff --git "):
            _flush(files, current)
            current = {"header": _header_path(line[len("diff --git "):]), "old": None, "new": None,
                       "status": "modified", "binary": False, "added": [], "removed": []}
        elif current is None or line.startswith("\\"):
            continue
        elif match := _HUNK.match(line):
            old_no, old_left = int(match[1]), int(match[2] or 1)
            new_no, new_left = int(match[3]), int(match[4] or 1)
        elif line.startswith(("new file mode", "deleted file mode")):
            current["status"] = "added" if line.startswith("new") else "deleted"
        elif line.startswith(("rename from ", "rename to ")):
            current["old" if line.startswith("rename from") else "new"] = _unquote(line.split(" ", 2)[2])
        elif line.startswith(("--- ", "+++ ")):
            path = _unquote(line[4:].rstrip("\t"))
            if path != "/dev/null":
                current["old" if line.startswith("-") else "new"] = path[2:]
        elif line.startswith("Binary files ") or line == "GIT binary patch":
            current["binary"] = True
    _flush(files, current)
    return files


def _flush(files: list[FileDiff], current: dict | None) -> None:
    if current is None:
        return
    lines = [*current["added"], *current["removed"]]
    files.append(FileDiff(
        old_path=None if current["status"] == "added" else current["old"] or current["header"],
        new_path=None if current["status"] == "deleted" else current["new"] or current["header"],
        binary=current["binary"] or any("\x00" in text for _, text in lines),
        added=tuple(current["added"]), removed=tuple(current["removed"])))


def _header_path(rest: str) -> str:
    """The path in ``a/P b/P`` (a header without rename: both sides are the same path)."""
    if rest.startswith('"'):
        quoted = re.match(r'"(?:[^"\\]|\\.)*"', rest)
        return _unquote(quoted.group(0))[2:] if quoted else rest
    return rest[2:2 + (len(rest) - 5) // 2]


def _unquote(text: str) -> str:
    """Undo git's C-style quoting of a path (``"a/tab\\there"``, octal bytes)."""
    if not (len(text) >= 2 and text[0] == text[-1] == '"'):
        return text
    out, body, i = bytearray(), text[1:-1], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            if body[i + 1] in "01234567":
                out.append(int(body[i + 1:i + 4], 8) & 0xFF)
                i += 4
                continue
            out += _ESCAPES.get(body[i + 1], body[i + 1]).encode()
            i += 2
            continue
        out += body[i].encode()
        i += 1
    return out.decode("utf-8", errors="replace")
