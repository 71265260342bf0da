"""What a check is (:class:`Check`), what it did (:class:`CheckResult`) and how results are reported.

Shared by where checks come from (:mod:`clone.checks.sources`), running them (:mod:`clone.checks.verify`)
and judging them against the baseline (:mod:`clone.checks.baseline`).
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from typing import Any

KINDS = ("lint", "test", "build")
# Output that says the check could not really run: a missing program, module or dependency (what setup
# should have installed; the offline checks cannot fetch it), or nothing to test.
_ENVIRONMENT_FAILURE = re.compile(r"No module named|ModuleNotFoundError|command not found|: not found$"
                                  r"|Cannot find module|no tests ran|collected 0 items"
                                  r"|module lookup disabled by GOPROXY=off|missing go\.sum entry"
                                  r"|no matching package named|--offline was specified|ENOTCACHED", re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class Check:
    """One command to run: what it checks, its argv, and where it came from."""

    name: str
    argv: tuple[str, ...]
    source: str
    env: tuple[tuple[str, str], ...] = ()  # set on top of the run's environment

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """What one check did. ``exit_code`` is None when the program could not be started."""

    name: str
    command: str
    exit_code: int | None
    duration: float
    output_tail: str
    timed_out: bool
    source: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    @property
    def status(self) -> str:
        return "PASS" if self.ok else "TIMEOUT" if self.timed_out else "FAIL"

    @property
    def failure_kind(self) -> str | None:
        """None when green; ``environment`` when the check could not really run (missing program, exit
        127, a missing module, no tests collected); else ``check``."""
        if self.ok:
            return None
        if self.exit_code in (None, 127) or _ENVIRONMENT_FAILURE.search(self.output_tail) or (
                self.exit_code == 5 and "pytest" in self.command):
            return "environment"
        return "check"

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ok": self.ok, "failure_kind": self.failure_kind}


# -- reporting --------------------------------------------------------------------------------

def summarize(results: list[CheckResult]) -> str:
    """One line per check, e.g. ``FAIL test `make test` (1.2s) exit 2``."""
    if not results:
        return "no checks detected"
    return "\n".join(f"{r.status} {r.name} `{r.command}` ({r.duration:.1f}s)" + (
        " could not start" if r.exit_code is None else f" exit {r.exit_code}" if r.status == "FAIL" else ""
    ) + (" (environment)" if r.failure_kind == "environment" else "") for r in results)


def failure_evidence(results: list[CheckResult]) -> str:
    """Markdown for a fix-it prompt: each failing command, how it failed and its output tail."""
    sections = []
    for r in (r for r in results if not r.ok):
        how = ("timed out and was killed" if r.timed_out else "could not start" if r.exit_code is None
               else f"exit code {r.exit_code}")
        # A fence longer than any backtick run in the output, so the output cannot close it.
        fence = "`" * max(3, 1 + max(map(len, re.findall(r"`+", r.output_tail)), default=0))
        sections.append(f"### `{r.command}` ({r.name}, from {r.source}): {how}\n\n"
                        f"{fence}text\n{r.output_tail or '(no output)'}\n{fence}\n")
    return "\n".join(sections)
