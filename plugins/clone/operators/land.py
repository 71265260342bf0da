"""Landing the work of the ``gated`` and ``pr`` push modes once CI is green (done by the autofix task,
the last link of a repo's chain).

gated: fast-forward the target branch to the green commit of the work branch (a plain,
non-forced push, which git refuses unless it is a fast-forward). If the target moved
meanwhile: rebase onto it, run the repo's checks again, push the result to a new work branch,
wait for CI again, and retry (bounded). Work branches are deleted once landed.
pr: update the pull request's body with the CI result and, with CLONE_PR_AUTOMERGE=1, merge it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from airflow.sdk.exceptions import AirflowSkipException

from clone.memory import docs as memory
from clone.checks import verify
from clone.errors import CIFailed, CloneError, PushConflict
from clone.fleet.repos_file import RepoEntry
from clone.util.git import Git
from clone.github import pulls
from clone.github.api import GitHubApi
from clone.github.connection import endpoint_for
from clone.operators.ci import CIWatchMixin, final_failures, label, log_ci_event
from clone.config.params import run_settings
from clone.work.passes import checks_for
from clone.work.push import record_incident
from clone.config.settings import Settings
from clone.work.workspace import identity

log = logging.getLogger(__name__)

LAND_ATTEMPTS = 3


def work_branch(repo: str, run_id: str) -> str:
    """``clone/<repo>/<run>``: the branch a gated or pr pass pushes to."""
    return f"clone/{repo}/" + re.sub(r"[^A-Za-z0-9._-]+", "-", run_id).strip("-.")[:120]


class LandMixin(CIWatchMixin):
    """What the autofix task does with a chain whose CI is green: nothing in direct mode, land the work
    branch in gated mode, describe (and maybe merge) the pull request in pr mode."""

    def finish_chain(self, context: Any, result: dict[str, Any]) -> dict[str, Any]:
        mode = result.get("push_mode", "direct")
        if mode == "direct":
            raise AirflowSkipException(f"{result['repo']}: CI {result['ci']['status']}; nothing to fix")
        settings = run_settings(context)
        ci = result["ci"]
        if mode == "pr":
            return self._finish_pr(settings, result, ci, ci["sha"])
        if ci["status"] != "success":
            raise CIFailed(f"{result['repo']}: gated mode lands only on a green CI run, and CI said "
                           f"{ci['status']}: {ci['message']}. The work stays on {result['push_branch']}.")
        return self._land(settings, context, result, ci["sha"], result["push_branch"], attempt=1)

    @final_failures
    def land_done(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        result = self.ci_result  # type: ignore[attr-defined]
        label(context, result["repo"])
        log_ci_event(event)
        echo = event["echo"]
        if event["status"] != "success":
            raise CIFailed(f"{result['repo']}: CI is {event['status']} after rebasing onto {result['branch']} "
                           f"({event['message']}); not landing. The work stays on {echo['work']}.")
        return self._land(run_settings(context), context, result, event["sha"], echo["work"], int(echo["attempt"]))

    # ------------------------------------------------------------------------------------------
    def _land(self, settings: Settings, context: Any, result: dict[str, Any], sha: str, work: str,
              attempt: int) -> dict[str, Any]:
        ws = Git(Path(result["workdir"]), identity(settings))
        target = result["branch"]
        pushed = ws.run("push", "--porcelain", "origin", f"{sha}:refs/heads/{target}", check=False, timeout=600)
        if pushed.ok:
            log.info("land: %s fast-forwarded to %s (green on CI)", target, sha[:12])
            for branch in {result["push_branch"], work}:
                ws.run("push", "--quiet", "--delete", "--", "origin", branch, check=False)
                log.info("land: deleted the work branch %s", branch)
            return {**result, "landed_sha": sha}
        ws.fetch("origin", f"+refs/heads/{target}:refs/remotes/origin/{target}")
        upstream = ws.rev(f"origin/{target}")
        if upstream is None or ws.is_ancestor(upstream, sha):
            raise CloneError(f"{result['repo']}: pushing {sha[:12]} to {target} failed: {pushed.tail(5)}")
        if attempt >= LAND_ATTEMPTS:
            raise CIFailed(f"{result['repo']}: {target} kept moving; gave up landing after {attempt} attempts. "
                             f"The work stays on {work}.")
        log.info("land: %s moved to %s; rebasing, re-verifying and waiting for CI again", target, upstream[:12])
        ws.run("checkout", "--quiet", "--force", "-B", work, sha)
        try:
            ws.rebase(f"origin/{target}")
        except PushConflict as e:
            ws.run("checkout", "--quiet", "--force", "-B", target, f"origin/{target}")
            record_incident(ws, target, result["repo"], memory.Incident(
                kind="land-conflict", title=f"gated work did not rebase onto {target}",
                what_happened=f"{target} moved while CI ran on {work}; rebasing conflicted.",
                root_cause=str(e).splitlines()[0],
                prevention="Keep passes small; the next pass starts from the new branch head.",
                context=f"run {context['run_id']}; the work stays on {work}"), context["run_id"])
            raise
        entry = RepoEntry.from_dict(result["entry"])
        results = [] if settings.verify_policy == "off" else verify.run_checks(
            ws.path, checks_for(entry, ws.path), timeout_seconds=settings.verify_timeout_minutes * 60,
            env=verify.default_env(passthrough=settings.agent_env_passthrough), network=entry.checks_network)
        if not all(r.ok for r in results) and settings.verify_policy == "block":
            raise CIFailed(f"{result['repo']}: checks are red after rebasing onto {target}; not landing:\n"
                             f"{verify.summarize(results)}")
        ws.run("reset", "--quiet", "--hard", "HEAD")
        ws.run("clean", "-ffd", "--quiet")
        rebased = ws.head()
        new_work = f"{result['push_branch']}-rebased-{attempt}"
        ws.run("push", "--quiet", "origin", f"{rebased}:refs/heads/{new_work}", timeout=600)
        ws.run("push", "--quiet", "--delete", "--", "origin", work, check=False)
        event = self.watch_ci(settings, result["github"], rebased, method_name="land_done",
                              echo={"attempt": attempt + 1, "work": new_work})
        return self.land_done(context, event)

    def _finish_pr(self, settings: Settings, result: dict[str, Any], ci: dict[str, Any], sha: str) -> dict[str, Any]:
        number = result["pull"]["number"]
        with GitHubApi(endpoint_for(settings.github_conn_id)) as api:
            pulls.update_body(api, result["github"], number, pulls.render_body(result, ci))
            if not settings.pr_automerge or ci.get("status") != "success":
                log.info("PR #%s: CI %s; %s leaves the merge to a person: %s", number, ci.get("status"),
                         "CLONE_PR_AUTOMERGE=0" if not settings.pr_automerge else "no green CI run",
                         result["pull"].get("html_url"))
                return result
            merged = pulls.merge(api, result["github"], number, sha)
        log.info("PR #%s merged (%s)", number, merged[:12])
        return {**result, "landed_sha": merged}
