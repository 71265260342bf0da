"""The rules on test code: ``deleted-test`` (a test definition or test file gone and not added back
elsewhere) and ``skip-marker`` (a new skip/xfail/ignore marker), and what counts as a test file."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from clone.checks.guards.diff import FileDiff
from clone.checks.guards.findings import Finding

_TEST_LAYOUT = re.compile(
    r"(?:^|/)(?:tests?|__tests__)/|(?:^|/)src/test/|(?:^|/)test_[^/]*\.py$|_test\.(?:py|go)$"
    r"|\.test\.(?:js|ts|jsx|tsx|mjs|cjs)$|(?:^|/)[^/]+\.spec\.[^/]+$")
JS_SUFFIXES = (".js", ".ts", ".jsx", ".tsx", ".mjs", ".cjs")
_SKIP_MARKERS = {
    (".py",): re.compile(r"^\s*@(?:pytest\.mark\.(?:skip|skipif|xfail)|unittest\.(?:skip\w*|expectedFailure))"
                         r"\b|(?:^|[\s=(])(?:pytest\.(?:skip|importorskip)|self\.skipTest)\s*\("
                         r"|\bpytestmark\s*=.*pytest\.mark\.(?:skip|skipif|xfail)\b"),
    JS_SUFFIXES: re.compile(r"\b(?:it|test|describe|context|suite|specify)\.skip\b|(?:^|[^\w.])x(?:it|describe"
                            r"|test|context|specify)\s*\("),
    (".go",): re.compile(r"\b[tb]\.Skip(?:f|Now)?\("),
    (".rs",): re.compile(r"^\s*#\[ignore\b"),
    (".java", ".kt"): re.compile(r"^\s*@(?:Disabled|Ignore)\b"),
}
#: (file suffixes, only in test files?, a test definition or the attribute before one, the test's name
#: within a few lines of the attribute). Rust and JUnit attributes mark tests wherever they are.
_TEST_DEFS = (
    ((".py",), True, re.compile(r"^\s*(?:async\s+)?def\s+(test\w*)\s*\("), None),
    ((".go",), True, re.compile(r"^func\s+(Test\w*)\s*\("), None),
    (JS_SUFFIXES, True, re.compile(r"^\s*(?:it|test)(?:\.only)?\s*\(\s*(['\"`])(.+?)\1"), None),
    ((".rs",), False, re.compile(r"^\s*#\[(?:\w+::)?test\]"), re.compile(r"\bfn\s+(\w+)")),
    ((".java", ".kt"), False, re.compile(r"^\s*@Test\b"), re.compile(r"(?:void|fun)\s+(\w+)\s*\(")),
)


def is_test_path(path: str) -> bool:
    return bool(_TEST_LAYOUT.search(path))


def deleted_tests(files: Sequence[FileDiff], blocks: bool) -> list[Finding]:
    # Tests removed here and added back elsewhere (a split or moved file) are not lost.
    readded = Counter(name for diff in files if not diff.binary
                      for name, _ in _test_defs(diff.path, diff.added))
    findings = []
    for diff in sorted(files, key=lambda d: d.new_path is not None):  # whole deleted files first
        if diff.binary:
            continue
        defs = _test_defs(diff.old_path or "", diff.removed)
        lost = [(name, line) for name, line in defs if not _take(readded, name)]
        gone = bool(diff.old_path and is_test_path(diff.old_path)
                    and not (diff.new_path and is_test_path(diff.new_path)))
        if gone and (lost or not defs):
            where = "deleted" if diff.new_path is None else f"moved out of the test layout to {diff.new_path}"
            count = f" ({len(lost)} test(s))" if lost else ""
            findings.append(Finding("deleted-test", diff.old_path or "", None, f"test file {where}{count}",
                                    blocks))
        elif not gone:
            findings += [Finding("deleted-test", diff.path, None, f"test {name} removed (was line {line})",
                                 blocks) for name, line in lost]
    return findings


def skip_markers(files: Sequence[FileDiff], blocks: bool) -> list[Finding]:
    removed = Counter(text.strip() for diff in files for _, text in diff.removed)  # moved lines are not new
    findings = []
    for diff in files:
        marker = next((rx for suffixes, rx in _SKIP_MARKERS.items() if diff.path.endswith(suffixes)), None)
        if marker is None or diff.binary:
            continue
        for number, text in diff.added:
            match = marker.search(text)
            if match and not _take(removed, text.strip()):
                findings.append(Finding("skip-marker", diff.path, number,
                                        f"new skip marker {match.group(0).strip(' =(')!r}", blocks))
    return findings


def _test_defs(path: str, lines: Sequence[tuple[int, str]]) -> list[tuple[str, int]]:
    """(test name, line number) for each test definition among ``lines``."""
    defs = []
    for suffixes, in_tests_only, start, name_rx in _TEST_DEFS:
        if not path.endswith(suffixes) or (in_tests_only and not is_test_path(path)):
            continue
        for index, (number, text) in enumerate(lines):
            match = start.search(text)
            if match and name_rx is None:
                defs.append((match.group(match.lastindex), number))
            elif match:
                names = (name_rx.search(t) for _, t in lines[index:index + 4])
                defs.append((next((n.group(1) for n in names if n), match.group(0).strip()), number))
    return defs


def _take(counter: Counter, key: str) -> bool:
    if counter[key] > 0:
        counter[key] -= 1
        return True
    return False
