"""Guards that run on the diff of a pass before anything is pushed.

Two kinds of finding: a **secret** in an added line always blocks the push; a change that
**weakens checks** (a deleted test, a new skip marker, an edit to CI workflows, to a protected
path or to the memory archive) blocks or only warns, by policy (``CLONE_GUARD_POLICY``).
:func:`scan` reads the diff through :class:`~clone.util.git.Git`; everything else is pure.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from clone.memory.compaction import ARCHIVE_DIR
from clone.errors import ConfigError, GitError
from clone.util.git import Git
from clone.memory.docs import Incident
from clone.checks import check_defs, secret_scan
from clone.checks.redact import find_secrets

if TYPE_CHECKING:
    from clone.config.settings import Settings

RULES = ("secret", "deleted-test", "skip-marker", "workflow-edit", "check-definition", "protected-path")
POLICIES = ("block", "warn")
MEMORY_ARCHIVE = ARCHIVE_DIR + "/"
#: CI definitions: a change here can switch checks off for every later commit.
CI_PATHS = (".github/workflows/", ".github/actions/", ".circleci/", ".buildkite/")
CI_FILES = (".gitlab-ci.yml", ".travis.yml", "azure-pipelines.yml", "bitbucket-pipelines.yml", "Jenkinsfile")

_TEST_LAYOUT = re.compile(
    r"(?:^|/)(?:tests?|__tests__)/|(?:^|/)src/test/|(?:^|/)test_[^/]*\.py$|_test\.(?:py|go)$"
    r"|\.test\.(?:js|ts|jsx|tsx|mjs|cjs)$|(?:^|/)[^/]+\.spec\.[^/]+$")
#: Where credential-named fixtures and integrity hashes are expected: only provider rules apply.
_FIXTURES = re.compile(r"(?:^|/)(?:fixtures|testdata|spec)/|(?:^|/)conftest\.py$|(?:^|/)(?:[^/]*\.lock"
                       r"|package-lock\.json|npm-shrinkwrap\.json|pnpm-lock\.yaml|go\.sum)$")
_JS = (".js", ".ts", ".jsx", ".tsx", ".mjs", ".cjs")
#: Source code, where a secret is a string literal and an unquoted value is a reference (``key = cfg.KEY``).
_CODE = (*_JS, ".py", ".go", ".rs", ".java", ".kt", ".scala", ".rb", ".php", ".cs", ".swift", ".c", ".h",
         ".cc", ".cpp", ".hpp", ".m", ".dart", ".lua", ".ex", ".exs")
_SKIP_MARKERS = {
    (".py",): re.compile(r"^\s*@(?:pytest\.mark\.(?:skip|skipif|xfail)|unittest\.(?:skip\w*|expectedFailure))"
                         r"\b|(?:^|[\s=(])(?:pytest\.(?:skip|importorskip)|self\.skipTest)\s*\("
                         r"|\bpytestmark\s*=.*pytest\.mark\.(?:skip|skipif|xfail)\b"),
    _JS: re.compile(r"\b(?:it|test|describe|context|suite|specify)\.skip\b|(?:^|[^\w.])x(?:it|describe|test"
                    r"|context|specify)\s*\("),
    (".go",): re.compile(r"\b[tb]\.Skip(?:f|Now)?\("),
    (".rs",): re.compile(r"^\s*#\[ignore\b"),
    (".java", ".kt"): re.compile(r"^\s*@(?:Disabled|Ignore)\b"),
}
#: (file suffixes, only in test files?, a test definition or the attribute before one, the test's name
#: within a few lines of the attribute). Rust and JUnit attributes mark tests wherever they are.
_TEST_DEFS = (
    ((".py",), True, re.compile(r"^\s*(?:async\s+)?def\s+(test\w*)\s*\("), None),
    ((".go",), True, re.compile(r"^func\s+(Test\w*)\s*\("), None),
    (_JS, True, re.compile(r"^\s*(?:it|test)(?:\.only)?\s*\(\s*(['\"`])(.+?)\1"), None),
    ((".rs",), False, re.compile(r"^\s*#\[(?:\w+::)?test\]"), re.compile(r"\bfn\s+(\w+)")),
    ((".java", ".kt"), False, re.compile(r"^\s*@Test\b"), re.compile(r"(?:void|fun)\s+(\w+)\s*\(")),
)
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v", '"': '"', "\\": "\\"}


@dataclasses.dataclass(frozen=True)
class Finding:
    """One reason not to push (``blocking``) or to look twice (a warning)."""

    rule: str  # one of RULES
    path: str
    line: int | None  # in the new version of the file, when the finding is about one line
    detail: str       # human readable; never contains a secret
    blocking: bool


@dataclasses.dataclass(frozen=True)
class GuardPolicy:
    """What counts as protected, and whether weakening changes block or only warn."""

    protected_paths: tuple[str, ...] = ()  # CLONE_PROTECTED_PATHS: fnmatch globs; `dir/` = all under dir
    weakening: str = "block"               # CLONE_GUARD_POLICY

    def __post_init__(self) -> None:
        if self.weakening not in POLICIES:
            raise ConfigError(f"CLONE_GUARD_POLICY must be one of {', '.join(POLICIES)}, "
                              f"not {self.weakening!r}")
        cleaned = tuple(p.strip().removeprefix("./").lstrip("/") for p in self.protected_paths if p.strip())
        object.__setattr__(self, "protected_paths", cleaned)

    @classmethod
    def from_settings(cls, settings: Settings) -> GuardPolicy:
        return cls(protected_paths=settings.protected_paths, weakening=settings.guard_policy)

    def protects(self, path: str) -> bool:
        """``path`` matches a glob, or lies under a directory named by one (``docs`` or ``docs/``)."""
        return any(fnmatchcase(path, pattern) or fnmatchcase(path, pattern.rstrip("/") + "/*")
                   for pattern in self.protected_paths)


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


def scan(git: Git, base: str, head: str = "HEAD", policy: GuardPolicy = GuardPolicy()) -> list[Finding]:
    """Every finding in the changes ``base..head`` of ``git``'s repository."""
    # --text and --no-textconv: a .gitattributes saying `-diff` must not hide a file from the scan.
    result = git.run("-c", "core.quotePath=false", "diff", "--no-color", "--no-ext-diff", "--no-textconv",
                     "--no-relative", "--submodule=short", "--text", "--unified=0", "--find-renames",
                     "--src-prefix=a/", "--dst-prefix=b/", base, head, "--", check=False)
    if not result.ok:  # stdout is never quoted: it may hold the very secrets we look for
        raise GitError(f"cannot diff {base}..{head} in {git.path} for the push guards: "
                       f"{result.stderr.strip()}", argv=result.argv, returncode=result.returncode,
                       output=result.stderr)

    def read(side: str, path: str) -> str | None:
        shown = git.run("show", f"{base if side == 'old' else head}:{path}", check=False)
        return shown.stdout if shown.ok else None

    return check(parse_diff(result.stdout), policy, read)


def check(files: Sequence[FileDiff], policy: GuardPolicy = GuardPolicy(),
          read: check_defs.Reader | None = None) -> list[Finding]:
    """The findings for already parsed diffs: secrets first, then weakening changes (``read`` gives whole
    files, for the rules on check definitions)."""
    blocks = policy.weakening == "block"
    return [*_secrets(files), *_deleted_tests(files, blocks), *_skip_markers(files, blocks),
            *_path_rules(files, policy, blocks),
            *(Finding("check-definition", path, line, detail, blocks)
              for path, line, detail in check_defs.weakened(files, read))]


def blocking(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.blocking]


def render(findings: Iterable[Finding]) -> str:
    """One line per finding: ``BLOCK secret in app/config.py:12: GitHub token (ghp_****)``."""
    return "\n".join(f"{'BLOCK' if f.blocking else 'WARN'} {f.rule} in {f.path}"
                     f"{'' if f.line is None else f':{f.line}'}: {f.detail}" for f in findings)


def incident(findings: Sequence[Finding], head: str) -> Incident:
    """The INCIDENTS.md entry for a push the guards blocked."""
    stopped = blocking(findings)
    rules = ", ".join(sorted({f.rule for f in stopped}, key=RULES.index))
    return Incident(
        kind="guard", title=f"push of {head[:12]} blocked ({rules})",
        what_happened=f"The pre-push guards found {len(stopped)} blocking issue(s): "
                      + "; ".join(render([f]) for f in stopped),
        root_cause="The pass added a secret or weakened the checks that keep the branch honest.",
        prevention="Remove the secret from the change (and rotate it if it is real); restore deleted tests "
                   "and skipped checks, or leave CI and protected paths to a human. Weakening findings only "
                   "warn with CLONE_GUARD_POLICY=warn; secrets always block.",
        context="; ".join(render([f]) for f in findings if not f.blocking))


def is_test_path(path: str) -> bool:
    return bool(_TEST_LAYOUT.search(path))


# -- the rules ---------------------------------------------------------------------------------
def _secrets(files: Sequence[FileDiff]) -> list[Finding]:
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


def _deleted_tests(files: Sequence[FileDiff], blocks: bool) -> list[Finding]:
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


def _skip_markers(files: Sequence[FileDiff], blocks: bool) -> list[Finding]:
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


def _path_rules(files: Sequence[FileDiff], policy: GuardPolicy, blocks: bool) -> list[Finding]:
    findings = []
    for diff in files:
        paths, what = [p for p in (diff.old_path, diff.new_path) if p], _change(diff)
        if any(p.startswith(CI_PATHS) or p in CI_FILES for p in paths):
            findings.append(Finding("workflow-edit", diff.path, None, f"CI definition {what}", blocks))
        if any(policy.protects(p) for p in paths):
            findings.append(Finding("protected-path", diff.path, None, f"protected path {what}", blocks))
        elif diff.old_path and diff.old_path.startswith(MEMORY_ARCHIVE):  # adding to it is the orchestrator's
            findings.append(Finding("protected-path", diff.path, None, f"memory archive file {what}", blocks))
    return findings


def _change(diff: FileDiff) -> str:
    if diff.old_path is None:
        return "added"
    if diff.new_path is None:
        return "deleted"
    return f"renamed from {diff.old_path}" if diff.old_path != diff.new_path else "modified"


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


def _consecutive(lines: Sequence[tuple[int, str]], allow_same: bool = False) -> list[list[tuple[int, str]]]:
    runs: list[list[tuple[int, str]]] = []
    for number, text in lines:
        if runs and (runs[-1][-1][0] == number - 1 or (allow_same and runs[-1][-1][0] == number)):
            runs[-1].append((number, text))
        else:
            runs.append([(number, text)])
    return runs


# -- parsing -------------------------------------------------------------------------------------
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
