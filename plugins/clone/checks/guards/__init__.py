"""Guards that run on the diff of a pass before anything is pushed.

Two kinds of finding: a **secret** in an added line always blocks the push; a change that
**weakens checks** (a deleted test, a new skip marker, an edit to CI workflows, to a protected
path or to the memory archive) blocks or only warns, by policy (``CLONE_GUARD_POLICY``).
:func:`scan` reads the diff through :class:`~clone.util.git.Git`; everything else is pure.

The package owns one module per concern: ``findings`` (the finding model, the policy, rendering and the
incident), ``diff`` (parsing ``git diff --unified=0``), and a module per rule family: ``secrets``,
``testcode`` (deleted tests, skip markers), ``paths`` (CI definitions, protected paths, the memory
archive); the check-definition rule is :mod:`clone.checks.check_defs`. It may import ``clone.checks``,
``clone.memory`` (the archive's folder, the incident model), ``clone.util.git`` and ``clone.errors``.
Callers import from here: this module re-exports the public names.
"""

from __future__ import annotations

from collections.abc import Sequence

from clone.checks import check_defs
from clone.checks.guards.diff import FileDiff, parse_diff
from clone.checks.guards.findings import POLICIES, RULES, Finding, GuardPolicy, blocking, incident, render
from clone.checks.guards.paths import CI_FILES, CI_PATHS, MEMORY_ARCHIVE, path_rules
from clone.checks.guards.secrets import added_secrets
from clone.checks.guards.testcode import deleted_tests, is_test_path, skip_markers
from clone.errors import GitError
from clone.util.git import Git

__all__ = ["CI_FILES", "CI_PATHS", "MEMORY_ARCHIVE", "POLICIES", "RULES", "FileDiff", "Finding", "GuardPolicy",
           "blocking", "check", "incident", "is_test_path", "parse_diff", "render", "scan"]


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
    return [*added_secrets(files), *deleted_tests(files, blocks), *skip_markers(files, blocks),
            *path_rules(files, policy, blocks),
            *(Finding("check-definition", path, line, detail, blocks)
              for path, line, detail in check_defs.weakened(files, read))]
