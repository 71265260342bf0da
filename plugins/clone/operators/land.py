"""The ``land`` task, the last link of a repo's chain: landing the work of the ``gated`` and ``pr`` push
modes once CI is green (in ``direct`` mode the push was the landing: it skips, saying so).

gated: fast-forward the target branch to the green commit of the work branch (a plain,
non-forced push, which git refuses unless it is a fast-forward). If the target moved
meanwhile: rebase onto it, run the repo's checks again, push the result to a new work branch,
wait for CI again, and retry (bounded). Work branches are deleted once landed.
pr: update the pull request's body with the CI result and, with CLONE_PR_AUTOMERGE=1, merge it.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import BaseOperator, TriggerRule
from airflow.sdk.exceptions import AirflowSkipException

from clone.checks import verify
from clone.config.params import run_settings
from clone.config.settings import Settings
from clone.errors import CIFailed, CloneError, PushConflict
from clone.fleet.repos_file import RepoEntry
from clone.github import pulls
from clone.memory import docs as memory
from clone.operators.ci import REPO_LABEL, ChainInput, CIWatchMixin, final_failures, label, log_ci_event, xcom_dict
from clone.work.chain import ChainResult
from clone.work.push import record_incident
from clone.work.session import checks_for
from clone.work.workspace import workspace_git

log = logging.getLogger(__name__)

LAND_ATTEMPTS = 3


class CloneLandOperator(ChainInput, CIWatchMixin, BaseOperator):
    """Land a green chain: nothing in direct mode, the work branch in gated mode, the pull request's
    description (and, with CLONE_PR_AUTOMERGE=1, its merge) in pr mode.

    ``fixed`` is autofix's result (None when autofix skipped: CI was green), ``checked`` ci_wait's (None
    when it skipped: no GitHub mapping), ``pushed`` push's, ``entry`` the repos.yaml entry (for the grid
    label when no task before returned anything). The trigger rule is ``all_done``: in a mapped task group
    Airflow judges the not yet expanded task on every repo's upstream instances, so any stricter rule let one
    red repo stop every repo's landing; each
    instance skips itself (saying why) when its own chain has nothing to land.
    """

    template_fields = ("fixed", "checked", "pushed", "entry")
    ui_color = "#e8ffe8"

    def __init__(self, *, fixed: Any, checked: Any, pushed: Any = None, entry: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("map_index_template", REPO_LABEL)
        kwargs.setdefault("trigger_rule", TriggerRule.ALL_DONE)
        super().__init__(**kwargs)
        self.fixed = fixed
        self.checked = checked
        self.pushed = pushed
        self.entry = entry

    @property
    def chain(self) -> ChainResult | None:  # type: ignore[override]
        """autofix's result if it ran, else ci_wait's, else push's; None when none produced one."""
        latest = xcom_dict(self.fixed) or xcom_dict(self.checked) or xcom_dict(self.pushed)
        return ChainResult.from_json(latest) if latest else None

    @final_failures
    def execute(self, context: Any) -> dict[str, Any]:
        result = self.chain
        if result is None:
            name = self.entry.get("name") if isinstance(self.entry, dict) else None
            if name:
                label(context, name)
            raise AirflowSkipException(f"{name or 'this repo'}: nothing to land: the chain stopped before the "
                                       "push (see its earlier tasks)")
        label(context, result.repo)
        ci = result.ci or {}
        if result.push_mode == "direct":
            raise AirflowSkipException(f"{result.repo}: direct mode: the push was the landing")
        if xcom_dict(self.fixed) is None and xcom_dict(self.checked) is None:
            raise AirflowSkipException(f"{result.repo}: no CI verdict (see ci_wait); nothing to land in "
                                       f"{result.push_mode} mode (the work stays on {result.push_branch})")
        if xcom_dict(self.fixed) is None and ci.get("status") not in ("success", "no_ci"):
            raise AirflowSkipException(f"{result.repo}: CI is {ci.get('status')} and autofix did not make it green; "
                                       f"nothing to land (the work stays on {result.push_branch})")
        settings = run_settings(context)
        if result.push_mode == "pr":
            return self._finish_pr(settings, result, ci, str(ci.get("sha")))
        if ci.get("status") != "success":
            raise CIFailed(f"{result.repo}: gated mode lands only on a green CI run, and CI said "
                           f"{ci.get('status')}: {ci.get('message')}. The work stays on {result.push_branch}.")
        return self._land(settings, context, result, ci["sha"], str(result.push_branch), attempt=1)

    @final_failures
    def land_done(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        result = self.chain
        assert result is not None
        label(context, result.repo)
        log_ci_event(event)
        echo = event["echo"]
        if event["status"] != "success":
            raise CIFailed(f"{result.repo}: CI is {event['status']} after rebasing onto {result.branch} "
                           f"({event['message']}); not landing. The work stays on {echo['work']}.")
        return self._land(run_settings(context), context, result, event["sha"], echo["work"], int(echo["attempt"]))

    # ------------------------------------------------------------------------------------------
    def _land(self, settings: Settings, context: Any, result: ChainResult, sha: str, work: str,
              attempt: int) -> dict[str, Any]:
        ws = workspace_git(settings, result.repo, result.workdir)
        target = result.branch
        pushed = ws.run("push", "--porcelain", "origin", f"{sha}:refs/heads/{target}", check=False, timeout=600)
        if pushed.ok:
            log.info("land: %s fast-forwarded to %s (green on CI)", target, sha[:12])
            for branch in {result.push_branch, work}:
                ws.run("push", "--quiet", "--delete", "--", "origin", branch, check=False)
                log.info("land: deleted the work branch %s", branch)
            return result.but(landed_sha=sha).to_json()
        ws.fetch("origin", f"+refs/heads/{target}:refs/remotes/origin/{target}")
        upstream = ws.rev(f"origin/{target}")
        if upstream is None or ws.is_ancestor(upstream, sha):
            raise CloneError(f"{result.repo}: pushing {sha[:12]} to {target} failed: {pushed.tail(5)}")
        if attempt >= LAND_ATTEMPTS:
            raise CIFailed(f"{result.repo}: {target} kept moving; gave up landing after {attempt} attempts. "
                             f"The work stays on {work}.")
        log.info("land: %s moved to %s; rebasing, re-verifying and waiting for CI again", target, upstream[:12])
        ws.run("checkout", "--quiet", "--force", "-B", work, sha)
        try:
            ws.rebase(f"origin/{target}")
        except PushConflict as e:
            ws.run("checkout", "--quiet", "--force", "-B", target, f"origin/{target}")
            record_incident(ws, target, result.repo, memory.Incident(
                kind="land-conflict", title=f"gated work did not rebase onto {target}",
                what_happened=f"{target} moved while CI ran on {work}; rebasing conflicted.",
                root_cause=str(e).splitlines()[0],
                prevention="Keep passes small; the next pass starts from the new branch head.",
                context=f"run {context['run_id']}; the work stays on {work}"), context["run_id"],
                mode=result.push_mode, work_branch=work, workspace=settings.workspace)
            raise
        entry = RepoEntry.from_dict(result.entry)
        if settings.verify_policy != "off":  # judged against the new target: its own red checks are not ours
            verdict, results = verify.recheck(
                ws, checks_for(entry, ws.path), upstream, timeout_seconds=settings.verify_timeout_minutes * 60,
                env=verify.default_env(passthrough=settings.agent_env_passthrough), network=entry.checks_network)
            log.info("land: re-verified after rebasing onto %s: %s\n%s", upstream[:12], verdict.label,
                     verify.summarize(results))
            if verdict.regressions and settings.verify_policy == "block":
                raise CIFailed(f"{result.repo}: checks green on {target} ({upstream[:12]}) are red after "
                               f"rebasing onto it; not landing:\n{verify.summarize(list(verdict.regressions))}")
        ws.run("reset", "--quiet", "--hard", "HEAD")
        ws.run("clean", "-ffd", "--quiet")
        rebased = ws.head()
        try_number = int(getattr(context.get("ti"), "try_number", 1) or 1)
        new_work = f"{result.push_branch}-rebased-{attempt}" + (f"-try{try_number}" if try_number > 1 else "")
        ws.run("push", "--quiet", "origin", f"{rebased}:refs/heads/{new_work}", timeout=600)
        ws.run("push", "--quiet", "--delete", "--", "origin", work, check=False)
        event = self.watch_ci(settings, str(result.github), rebased, method_name="land_done",
                              echo={"attempt": attempt + 1, "work": new_work})
        return self.land_done(context, event)

    def _finish_pr(self, settings: Settings, result: ChainResult, ci: dict[str, Any], sha: str) -> dict[str, Any]:
        pull = result.pull or {}
        number = pull["number"]
        from clone.github.client import GitHubClient  # PyGithub: imported when used, not at parse
        with GitHubClient.for_connection(settings.github_conn_id) as api:
            pulls.update_body(api, str(result.github), number, pulls.render_body(result.to_json(), ci))
            if not settings.pr_automerge or ci.get("status") != "success":
                log.info("PR #%s: CI %s; %s leaves the merge to a person: %s", number, ci.get("status"),
                         "CLONE_PR_AUTOMERGE=0" if not settings.pr_automerge else "no green CI run",
                         pull.get("html_url"))
                return result.to_json()
            merged = pulls.merge(api, str(result.github), number, sha)
        log.info("PR #%s merged (%s)", number, merged[:12])
        return result.but(landed_sha=merged).to_json()
