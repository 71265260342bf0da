"""What the guards report and how: the :class:`Finding` model, the :class:`GuardPolicy` that decides what is
protected and whether weakening blocks, and the renderings of findings for logs and INCIDENTS.md."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from clone.errors import ConfigError
from clone.memory.docs import Incident

if TYPE_CHECKING:
    from clone.config.settings import Settings

RULES = ("secret", "deleted-test", "skip-marker", "workflow-edit", "check-definition", "protected-path")
POLICIES = ("block", "warn")


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
