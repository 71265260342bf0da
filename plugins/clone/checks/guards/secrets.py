"""The ``secret`` rule: Clone's own rules (:mod:`clone.checks.redact`), then detect-secrets
(:mod:`clone.checks.secret_scan`), over the added lines of every file; a secret always blocks."""

from __future__ import annotations

import re
from collections.abc import Sequence

from clone.checks import secret_scan
from clone.checks.guards.diff import FileDiff
from clone.checks.guards.findings import Finding
from clone.checks.guards.testcode import JS_SUFFIXES, is_test_path
from clone.checks.redact import find_secrets

#: Where credential-named fixtures and integrity hashes are expected: only provider rules apply.
_FIXTURES = re.compile(r"(?:^|/)(?:fixtures|testdata|spec)/|(?:^|/)conftest\.py$|(?:^|/)(?:[^/]*\.lock"
                       r"|package-lock\.json|npm-shrinkwrap\.json|pnpm-lock\.yaml|go\.sum)$")
#: Source code, where a secret is a string literal and an unquoted value is a reference (``key = cfg.KEY``).
_CODE = (*JS_SUFFIXES, ".py", ".go", ".rs", ".java", ".kt", ".scala", ".rb", ".php", ".cs", ".swift", ".c",
         ".h", ".cc", ".cpp", ".hpp", ".m", ".dart", ".lua", ".ex", ".exs")


def added_secrets(files: Sequence[FileDiff]) -> list[Finding]:
    """Clone's rules, then detect-secrets, over the added lines of every file, binary-looking ones too."""
    findings = []
    for diff in files:
        if not diff.added:
            continue
        options = {"assignments": not (is_test_path(diff.path) or _FIXTURES.search(diff.path)),
                   "bare_values": not diff.path.endswith(_CODE)}
        # NUL-split pieces stand as lines of their own: one NUL byte must not switch the scan off.
        added = [(number, piece) for number, text in diff.added for piece in secret_scan.text_pieces(text)]
        seen = set()
        for run in _consecutive(added, allow_same=True):
            for hit in find_secrets([text for _, text in run], **options):
                seen.add(run[hit.line_index][0])
                findings.append(Finding("secret", diff.path, run[hit.line_index][0],
                                        f"{hit.kind} ({hit.preview})", True))
        for index, kind in secret_scan.scan_lines([text for _, text in added]):
            if added[index][0] not in seen:
                seen.add(added[index][0])
                findings.append(Finding("secret", diff.path, added[index][0], f"{kind} (detect-secrets)", True))
    return findings


def _consecutive(lines: Sequence[tuple[int, str]], allow_same: bool = False) -> list[list[tuple[int, str]]]:
    runs: list[list[tuple[int, str]]] = []
    for number, text in lines:
        if runs and (runs[-1][-1][0] == number - 1 or (allow_same and runs[-1][-1][0] == number)):
            runs[-1].append((number, text))
        else:
            runs.append([(number, text)])
    return runs
