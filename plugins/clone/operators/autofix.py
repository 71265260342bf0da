"""CI autofix: hand the failing jobs' logs to the agent, push its fix, wait for CI again (bounded). Only
fixing: a green chain of gated/pr work is landed by the ``land`` task that follows.

Retries resume, never repeat: a retried autofix (after a worker was killed, or after the scheduler
failed a resumed task in the deferral race described in :mod:`clone.triggers.ci`) reads the remote
branch first; fix commits this run already pushed are watched, not made again. A failure a retry
cannot change (CI still red, autofix off, a timeout) raises ``AirflowFailException``: no retry.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from airflow.sdk import BaseOperator, TriggerRule
from airflow.sdk.exceptions import AirflowSkipException

from clone.config.params import run_settings
from clone.config.settings import Settings
from clone.errors import CIFailed, CloneError, GitHubError
from clone.fleet.repos_file import RepoEntry
from clone.github.ci_evidence import failure_report, rerun_failed_jobs, run_attempts
from clone.memory import docs as memory
from clone.operators.ci import (REPO_LABEL, ChainInput, CIWatchMixin, final_failures, label, log_ci_event,
                                xcom_dict)
from clone.util.git import Git
from clone.workflow.controls import skip_if_paused
from clone.work.autofix import FixFailed, fix_ci
from clone.work.push import commit_and_push, push_branch, record_incident
from clone.work.workspace import workspace_git

log = logging.getLogger(__name__)

GREEN_OUTCOMES = ("success", "no_ci")


def autofix_commits(ws: Git, base: str, head: str, run_id: str) -> list[str]:
    """The fix commits this run pushed on top of ``base`` up to ``head``, oldest first."""
    if base == head:
        return []
    listing = ws.run("log", "--reverse", "--format=%H%x00%B%x1e", f"{base}..{head}").stdout
    found = []
    for record in listing.split("\x1e"):
        sha, _, body = record.strip().partition("\x00")
        trailers = {line.strip() for line in body.splitlines()}
        if sha and f"Clone-Run: {run_id}" in trailers and "Clone-Pass: autofix" in trailers:
            found.append(sha)
    return found


class CloneAutofixOperator(ChainInput, CIWatchMixin, BaseOperator):
    """When CI failed for the commit this chain pushed, let the agent fix it, at most N times."""

    template_fields = ("ci_result", "entry")
    chain_field = "ci_result"
    ui_color = "#fff0e0"

    def __init__(self, *, ci_result: Any, entry: Any = None, **kwargs: Any) -> None:
        # all_done, skipping itself when ci_wait gave no verdict: a task the scheduler skips never renders
        # its grid label (it would show its map index), and see CloneLandOperator on mapped task groups.
        kwargs.setdefault("map_index_template", REPO_LABEL)
        kwargs.setdefault("trigger_rule", TriggerRule.ALL_DONE)
        super().__init__(**kwargs)
        self.ci_result = ci_result
        self.entry = entry

    @final_failures
    def execute(self, context: Any) -> dict[str, Any]:
        if not xcom_dict(self.ci_result):
            name = self.entry.get("name") if isinstance(self.entry, dict) else None
            if name:
                label(context, name)
            raise AirflowSkipException(f"{name or 'this repo'}: no CI verdict (ci_wait did not return one; "
                                       "see its log); nothing to fix")
        result = self.chain
        label(context, result.repo)
        ci = result.ci or {}
        if ci.get("status") in GREEN_OUTCOMES:
            raise AirflowSkipException(f"{result.repo}: CI {ci['status']}; nothing to fix")
        if ci.get("sha") != result.pushed_sha:
            raise CIFailed(f"{result.repo}: CI failed for {str(ci.get('sha'))[:12]}, which this run did not push; "
                           "autofix only fixes commits it pushed")
        skip_if_paused(result.repo)
        settings = run_settings(context)
        if int(getattr(context.get("ti"), "try_number", 1) or 1) > 1:
            resumed = self._resume(settings, context, ci)
            if resumed is not None:
                return resumed
        if settings.ci_rerun_failed and self._rerun_failed_jobs(settings, ci):
            event = self.watch_ci(settings, str(result.github), ci["sha"], method_name="ci_done",
                                  echo={"attempt": 0, "rerun": True}, check_first=False)
            return self.ci_done(context, event)
        return self._first_attempt(settings, context, ci)

    def _resume(self, settings: Settings, context: Any, ci: dict[str, Any]) -> dict[str, Any] | None:
        """On a retry: pick up where an earlier try of this run stopped, from what the remote holds."""
        result = self.chain
        ws = self._workspace(settings, ci["sha"])
        branch = result.remote_branch
        head = ws.rev(f"origin/{branch}")
        pushed = autofix_commits(ws, ci["sha"], head, context["run_id"]) if head and ws.is_ancestor(ci["sha"], head) \
            else []
        if pushed:
            attempt = len(pushed)
            log.info("autofix: try %s resumes after attempt %d: fix %s is already on %s; watching its CI instead "
                     "of fixing again", context["ti"].try_number, attempt, pushed[-1][:12], branch)
            event = self.watch_ci(settings, str(result.github), pushed[-1], method_name="ci_done",
                                  echo={"attempt": attempt})
            return self.ci_done(context, event)
        if settings.ci_rerun_failed:
            try:
                from clone.github.client import GitHubClient  # PyGithub: imported when used, not at parse
                with GitHubClient.for_connection(settings.github_conn_id) as client:
                    now = run_attempts(client, str(result.github), ci["sha"])
            except GitHubError as e:
                log.warning("autofix: cannot tell whether an earlier try re-ran the failed jobs (%s)", e)
                now = []
            before = {run.get("id"): int(run.get("run_attempt") or 1) for run in ci.get("runs") or []}
            if any(int(run.get("run_attempt") or 1) > before.get(run.get("id"), 1) for run in now):
                log.info("autofix: try %s resumes after an earlier try re-ran the failed jobs; watching the re-run",
                         context["ti"].try_number)
                event = self.watch_ci(settings, str(result.github), ci["sha"], method_name="ci_done",
                                      echo={"attempt": 0, "rerun": True})
                return self.ci_done(context, event)
        return None

    def _first_attempt(self, settings: Settings, context: Any, ci: dict[str, Any]) -> dict[str, Any]:
        if not settings.ci_autofix_enabled or settings.autofix_max_attempts < 1:
            self._give_up(settings, context, ci, attempts=0,
                          why="CI autofix is off (CI_AUTOFIX_ENABLED=0 or CLONE_AUTOFIX_MAX_ATTEMPTS=0)")
        return self._attempt(settings, context, ci, attempt=1)

    def _rerun_failed_jobs(self, settings: Settings, ci: dict[str, Any]) -> bool:
        """Ask GitHub to re-run the failed jobs once (CLONE_CI_RERUN_FAILED); True if any re-run started."""
        started = False
        from clone.github.client import GitHubClient  # PyGithub: imported when used, not at parse
        with GitHubClient.for_connection(settings.github_conn_id) as client:
            for run in ci.get("runs") or []:
                if run.get("conclusion") in ("success", "neutral", "skipped"):
                    continue
                try:
                    accepted = rerun_failed_jobs(client, str(self.chain.github), run["id"])
                except GitHubError as e:
                    accepted, why = False, str(e)
                else:
                    why = "GitHub did not accept it"
                if accepted:
                    log.info("CI: re-running the failed jobs of run %s once to tell flaky from broken", run["id"])
                    started = True
                else:
                    log.warning("CI: could not re-run run %s (%s); going straight to autofix", run["id"], why)
        return started

    def _record_flaky(self, settings: Settings, context: Any, event: dict[str, Any]) -> None:
        result = self.chain
        if result.push_mode != "direct":
            # Gated/pr: a record commit on the work branch would land untested; the log and summary say it.
            log.warning("CI flaky on %s (recorded in PROJECT_MEMORY.md only in direct mode)", result.repo)
            return
        ws = self._workspace(settings, event["sha"])
        urls = ", ".join(str(run.get("html_url")) for run in event.get("runs") or [])
        memory.append_verification_history(ws.path, memory.VerificationEntry(
            when=dt.datetime.now(dt.timezone.utc), run_id=context["run_id"], sha=event["sha"], pass_kind="ci",
            checks=[], outcome=f"CI flaky: failed, then green when the failed jobs were re-run ({urls})",
        ), repo_name=result.repo)
        commit_and_push(ws, result.branch, f"clone: record flaky CI run\n\nClone-Run: {context['run_id']}\n",
                        (memory.MEMORY,))

    @final_failures
    def ci_done(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        result = self.chain
        attempt = int(event["echo"]["attempt"])
        label(context, result.repo)
        log_ci_event(event)
        settings = run_settings(context)
        if event["echo"].get("rerun"):
            if event["status"] in GREEN_OUTCOMES:
                log.warning("CI: green on re-run: the failure was flaky; no autofix")
                self._record_flaky(settings, context, event)
                return result.but(ci=event, autofix_attempts=0, flaky=True).to_json()
            if event["status"] in ("timeout", "error"):
                raise CIFailed(f"{result.repo}: {event['message']}")
            return self._first_attempt(settings, context, event)
        if event["status"] in GREEN_OUTCOMES:
            log.info("autofix: CI is %s after %d attempt(s) on %s", event["status"], attempt, result.repo)
            return result.but(ci=event, autofix_attempts=attempt).to_json()
        if event["status"] in ("timeout", "error"):
            raise CIFailed(f"{result.repo}: {event['message']}")
        if attempt >= settings.autofix_max_attempts:
            self._give_up(settings, context, event, attempts=attempt,
                          why=f"CI still red after {attempt} autofix attempt(s) (CLONE_AUTOFIX_MAX_ATTEMPTS)")
        return self._attempt(settings, context, event, attempt=attempt + 1)

    # ------------------------------------------------------------------------------------------
    def _workspace(self, settings: Settings, sha: str) -> Git:
        """The pass's workspace, checked out at ``sha`` (a commit this chain pushed)."""
        result = self.chain
        ws = workspace_git(settings, result.repo, result.workdir)
        ws.fetch("origin", f"+refs/heads/{result.remote_branch}:refs/remotes/origin/{result.remote_branch}")
        if ws.rev(sha) is None:
            raise CloneError(f"{result.repo}: commit {sha} is not in the workspace {ws.path}")
        ws.run("checkout", "--quiet", "--force", "-B", result.branch, sha)
        ws.run("clean", "-ffd", "--quiet")  # what a killed earlier try may have left (ignored files stay)
        return ws

    def _attempt(self, settings: Settings, context: Any, ci: dict[str, Any], attempt: int) -> dict[str, Any]:
        result = self.chain
        sha = ci["sha"]
        log.info("autofix: attempt %d/%d for %s at %s", attempt, settings.autofix_max_attempts, result.repo, sha[:12])
        from clone.github.client import GitHubClient  # PyGithub: imported when used, not at parse
        with GitHubClient.for_connection(settings.github_conn_id) as client:
            report = failure_report(client, str(result.github), ci.get("runs") or [], settings.ci_log_max_lines)
        log.info("autofix: failing jobs handed to the agent:\n%s", report or "(none found)")
        ws = self._workspace(settings, sha)
        skip_if_paused(result.repo)  # checked again on every attempt: a resumed task may find the switch on
        try:
            fix_ci(settings, ws, RepoEntry.from_dict(result.entry), run_id=context["run_id"], sha=sha,
                   attempt=attempt, failure_report=report)
        except FixFailed as e:
            self._give_up(settings, context, ci, attempts=attempt, why=str(e))
        pushed = push_branch(ws, result.remote_branch)
        log.info("autofix: pushed %s; waiting for CI again", pushed[:12])
        event = self.watch_ci(settings, str(result.github), pushed, method_name="ci_done", echo={"attempt": attempt})
        return self.ci_done(context, event)

    def _give_up(self, settings: Settings, context: Any, ci: dict[str, Any], *, attempts: int, why: str) -> None:
        result = self.chain
        urls = ", ".join(str(run.get("html_url")) for run in ci.get("runs") or [])
        ws = self._workspace(settings, ci["sha"])
        where = record_incident(ws, result.branch, result.repo, memory.Incident(
            kind="ci-red",
            title=f"CI still failing on {result.remote_branch} after {attempts} autofix attempt(s)",
            what_happened=f"CI failed for commit {ci['sha'][:12]} pushed by Clone; {why}.",
            root_cause="See the failing job logs of the CI runs below; the automated fix did not resolve it.",
            prevention="A person should look at the failure; add what was learned to PROJECT_MEMORY.md and "
                       "a regression test that covers it.",
            context=f"run {context['run_id']}; CI runs: {urls or 'unknown'}",
        ), context["run_id"], mode=result.push_mode, work_branch=result.push_branch,
            workspace=settings.workspace)
        raise CIFailed(f"{result.repo}: {why}. CI runs: {urls or 'unknown'}. The ci-red incident is {where}")
