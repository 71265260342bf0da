"""The rules on where a change lands: ``workflow-edit`` (CI definitions) and ``protected-path``
(``CLONE_PROTECTED_PATHS``, and existing files of the memory archive, which only the orchestrator adds to)."""

from __future__ import annotations

from collections.abc import Sequence

from clone.checks.guards.diff import FileDiff
from clone.checks.guards.findings import Finding, GuardPolicy
from clone.memory.compaction import ARCHIVE_DIR

MEMORY_ARCHIVE = ARCHIVE_DIR + "/"
#: CI definitions: a change here can switch checks off for every later commit.
CI_PATHS = (".github/workflows/", ".github/actions/", ".circleci/", ".buildkite/")
CI_FILES = (".gitlab-ci.yml", ".travis.yml", "azure-pipelines.yml", "bitbucket-pipelines.yml", "Jenkinsfile")


def path_rules(files: Sequence[FileDiff], policy: GuardPolicy, blocks: bool) -> list[Finding]:
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
