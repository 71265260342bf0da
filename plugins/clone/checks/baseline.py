"""The baseline: the checks on the untouched base commit, and the verdict that judges the agent against it.

Only checks green at the baseline and red after the agent are the agent's (regressions): they block and
go to the agent. Checks red at the baseline are pre-existing, never blamed on it. The pass judges its
work this way (:mod:`clone.work.passes`), and so does the gated re-check before landing (:func:`recheck`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clone.checks.model import Check, CheckResult, summarize
from clone.checks.repo_env import env_root_for
from clone.errors import GitError

if TYPE_CHECKING:
    from clone.util.git import Git

log = logging.getLogger("clone.checks.verify")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The checks after the agent, judged against the same checks on the untouched base commit."""

    regressions: tuple[CheckResult, ...]  # green at baseline, red now: the agent's, they block
    pre_existing: tuple[CheckResult, ...]  # red at baseline and now: never blamed on the agent
    trusted: int  # how many checks were green at baseline (the ones that can judge the agent)

    @property
    def label(self) -> str:
        if self.regressions:
            return "failed"
        if not self.trusted:
            return "unverified (every check was red before the agent)"
        if self.pre_existing:
            return "passed (pre-existing red: " + ", ".join(r.name for r in self.pre_existing) + ")"
        return "passed"


def judge(baseline: list[CheckResult], after: list[CheckResult]) -> Verdict:
    """Regressions are checks green at baseline and red after; a check with no baseline counts as green."""
    before = {r.command: r for r in baseline}
    regressions, pre_existing = [], []
    for result in after:
        if result.ok:
            continue
        base = before.get(result.command)
        (pre_existing if base is not None and not base.ok else regressions).append(result)
    trusted = sum(1 for r in after if before.get(r.command) is None or before[r.command].ok)
    return Verdict(tuple(regressions), tuple(pre_existing), trusted)


def baseline(workdir: Path, checks: list[Check], sha: str, **run_kwargs: Any) -> list[CheckResult]:
    """The checks on the untouched base commit ``sha`` (the work tree must be at it), cached per sha
    and check list under the repo's environment."""
    key = f"{sha}-" + hashlib.sha256("\0".join(c.command for c in checks).encode()).hexdigest()[:16]
    cache = env_root_for(Path(workdir)) / "baseline" / f"{key}.json"
    if cache.is_file():
        try:
            results = [CheckResult(**{k: v for k, v in item.items() if k not in ("ok", "failure_kind")})
                       for item in json.loads(cache.read_text(encoding="utf-8"))]
            log.info("verify: baseline for %s from cache:\n%s", sha[:12], summarize(results))
            return results
        except (ValueError, TypeError) as e:
            log.warning("verify: ignoring the cached baseline %s: %s", cache, e)
    log.info("verify: baseline: running the checks on the untouched base commit %s", sha[:12])
    from clone.checks.verify import run_checks  # verify re-exports this module: import it when used

    results = run_checks(workdir, checks, **run_kwargs)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps([r.to_dict() for r in results]), encoding="utf-8")
    return results


def recheck(git: Git, checks: list[Check], base_sha: str, **run_kwargs: Any) -> tuple[Verdict, list[CheckResult]]:
    """The checks on the work tree's HEAD judged against a baseline on ``base_sha`` (cached per sha).

    For the gated re-check after rebasing onto a target that moved: what was already red on the new
    target is not the agent's. The work tree goes back to HEAD (same branch) clean afterwards.
    """
    from clone.checks.verify import run_checks

    head = git.head()
    branch = git.run("symbolic-ref", "--quiet", "--short", "HEAD", check=False).stdout.strip()
    git.run("checkout", "--quiet", "--force", "--detach", base_sha)
    git.run("clean", "-ffd", "--quiet")
    try:
        before = baseline(git.path, checks, base_sha, **run_kwargs)
    finally:
        git.run("checkout", "--quiet", "--force", *((branch,) if branch else ("--detach", head)))
        git.run("clean", "-ffd", "--quiet")
    if git.head() != head:
        raise GitError(f"recheck: {git.path} is at {git.head()[:12]}, expected {head[:12]}")
    after = run_checks(git.path, checks, **run_kwargs)
    return judge(before, after), after
