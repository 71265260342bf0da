"""CI autofix: hand the failing jobs' logs to the agent, push its fix, wait for CI again (bounded).

Retries resume, never repeat: a retried autofix (after a worker was killed, or after the scheduler
failed a resumed task in the deferral race described in :mod:`clone.triggers.ci`) reads the remote
branch first; fix commits this run already pushed are watched, not made again. A failure a retry
cannot change (CI still red, autofix off, a timeout) raises ``AirflowFailException``: no retry.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator

from clone.state import budget
from clone.checks import guards
from clone.memory import docs as memory
from clone.memory import prompts
from clone.agents import AgentRun, build_agent
from clone.workflow.controls import skip_if_paused
from clone.errors import AgentError, CIFailed, CloneError, GitHubError
from clone.util.git import Git
from clone.github.ci import failure_report, rerun_failed_jobs, run_attempts
from clone.operators.ci import REPO_LABEL, final_failures, label, log_ci_event, xcom_dict
from clone.operators.land import LandMixin
from clone.work.passes import (commit_message, commit_work, keep_work, read_docs, restore_protected,
                          snapshot_protected)
from clone.work.push import commit_and_push, push_branch, record_incident
from clone.config.params import run_settings
from clone.config.settings import Settings
from clone.work.workspace import identity

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


class CloneAutofixOperator(LandMixin, BaseOperator):
    """When CI failed for the commit this chain pushed, let the agent fix it, at most N times."""

    template_fields = ("ci_result",)
    ui_color = "#fff0e0"

    def __init__(self, *, ci_result: Any, **kwargs: Any) -> None:
        kwargs.setdefault("map_index_template", REPO_LABEL)
        super().__init__(**kwargs)
        self.ci_result = ci_result

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)
        self.ci_result = xcom_dict(self.ci_result)

    @final_failures
    def execute(self, context: Any) -> dict[str, Any]:
        result = self.ci_result
        label(context, result["repo"])
        ci = result["ci"]
        if ci["status"] in GREEN_OUTCOMES:
            return self.finish_chain(context, result)
        if ci["sha"] != result.get("pushed_sha"):
            raise CIFailed(f"{result['repo']}: CI failed for {ci['sha'][:12]}, which this run did not push; "
                           "autofix only fixes commits it pushed")
        skip_if_paused(result["repo"])
        settings = run_settings(context)
        if int(getattr(context.get("ti"), "try_number", 1) or 1) > 1:
            resumed = self._resume(settings, context, ci)
            if resumed is not None:
                return resumed
        if settings.ci_rerun_failed and self._rerun_failed_jobs(settings, ci):
            event = self.watch_ci(settings, result["github"], ci["sha"], method_name="ci_done",
                                  echo={"attempt": 0, "rerun": True}, check_first=False)
            return self.ci_done(context, event)
        return self._first_attempt(settings, context, ci)

    def _resume(self, settings: Settings, context: Any, ci: dict[str, Any]) -> dict[str, Any] | None:
        """On a retry: pick up where an earlier try of this run stopped, from what the remote holds."""
        result = self.ci_result
        ws = self._workspace(settings, ci["sha"])
        branch = result.get("push_branch", result["branch"])
        head = ws.rev(f"origin/{branch}")
        pushed = autofix_commits(ws, ci["sha"], head, context["run_id"]) if head and ws.is_ancestor(ci["sha"], head) \
            else []
        if pushed:
            attempt = len(pushed)
            log.info("autofix: try %s resumes after attempt %d: fix %s is already on %s; watching its CI instead "
                     "of fixing again", context["ti"].try_number, attempt, pushed[-1][:12], branch)
            event = self.watch_ci(settings, result["github"], pushed[-1], method_name="ci_done",
                                  echo={"attempt": attempt})
            return self.ci_done(context, event)
        if settings.ci_rerun_failed:
            try:
                from clone.github.client import GitHubClient  # PyGithub: imported when used, not at parse
                with GitHubClient.for_connection(settings.github_conn_id) as client:
                    now = run_attempts(client, result["github"], ci["sha"])
            except GitHubError as e:
                log.warning("autofix: cannot tell whether an earlier try re-ran the failed jobs (%s)", e)
                now = []
            before = {run.get("id"): int(run.get("run_attempt") or 1) for run in ci.get("runs") or []}
            if any(int(run.get("run_attempt") or 1) > before.get(run.get("id"), 1) for run in now):
                log.info("autofix: try %s resumes after an earlier try re-ran the failed jobs; watching the re-run",
                         context["ti"].try_number)
                event = self.watch_ci(settings, result["github"], ci["sha"], method_name="ci_done",
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
                    accepted = rerun_failed_jobs(client, self.ci_result["github"], run["id"])
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
        result = self.ci_result
        if result.get("push_mode", "direct") != "direct":
            # Gated/pr: a record commit on the work branch would land untested; the log and summary say it.
            log.warning("CI flaky on %s (recorded in PROJECT_MEMORY.md only in direct mode)", result["repo"])
            return
        ws = self._workspace(settings, event["sha"])
        urls = ", ".join(str(run.get("html_url")) for run in event.get("runs") or [])
        memory.append_verification_history(ws.path, memory.VerificationEntry(
            when=dt.datetime.now(dt.timezone.utc), run_id=context["run_id"], sha=event["sha"], pass_kind="ci",
            checks=[], outcome=f"CI flaky: failed, then green when the failed jobs were re-run ({urls})",
        ), repo_name=result["repo"])
        commit_and_push(ws, result["branch"], f"clone: record flaky CI run\n\nClone-Run: {context['run_id']}\n",
                        (memory.MEMORY,))

    @final_failures
    def ci_done(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        result = self.ci_result
        attempt = int(event["echo"]["attempt"])
        label(context, result["repo"])
        log_ci_event(event)
        settings = run_settings(context)
        if event["echo"].get("rerun"):
            if event["status"] in GREEN_OUTCOMES:
                log.warning("CI: green on re-run: the failure was flaky; no autofix")
                self._record_flaky(settings, context, event)
                flaky = {**result, "ci": event, "autofix_attempts": 0, "flaky": True}
                return flaky if result.get("push_mode", "direct") == "direct" else self.finish_chain(context, flaky)
            if event["status"] in ("timeout", "error"):
                raise CIFailed(f"{result['repo']}: {event['message']}")
            return self._first_attempt(settings, context, event)
        if event["status"] in GREEN_OUTCOMES:
            log.info("autofix: CI is %s after %d attempt(s) on %s", event["status"], attempt, result["repo"])
            fixed = {**result, "ci": event, "autofix_attempts": attempt}
            if result.get("push_mode", "direct") == "direct":
                return fixed
            return self.finish_chain(context, fixed)
        if event["status"] in ("timeout", "error"):
            raise CIFailed(f"{result['repo']}: {event['message']}")
        if attempt >= settings.autofix_max_attempts:
            self._give_up(settings, context, event, attempts=attempt,
                          why=f"CI still red after {attempt} autofix attempt(s) (CLONE_AUTOFIX_MAX_ATTEMPTS)")
        return self._attempt(settings, context, event, attempt=attempt + 1)

    # ------------------------------------------------------------------------------------------
    def _workspace(self, settings: Settings, sha: str) -> Git:
        """The pass's workspace, checked out at ``sha`` (a commit this chain pushed)."""
        result = self.ci_result
        ws = Git(Path(result["workdir"]), identity(settings))
        remote_branch = result.get("push_branch", result["branch"])
        ws.fetch("origin", f"+refs/heads/{remote_branch}:refs/remotes/origin/{remote_branch}")
        if ws.rev(sha) is None:
            raise CloneError(f"{result['repo']}: commit {sha} is not in the workspace {ws.path}")
        ws.run("checkout", "--quiet", "--force", "-B", result["branch"], sha)
        ws.run("clean", "-ffd", "--quiet")  # what a killed earlier try may have left (ignored files stay)
        return ws

    def _attempt(self, settings: Settings, context: Any, ci: dict[str, Any], attempt: int) -> dict[str, Any]:
        result = self.ci_result
        repo, sha = result["repo"], ci["sha"]
        run_id = context["run_id"]
        log.info("autofix: attempt %d/%d for %s at %s", attempt, settings.autofix_max_attempts, repo, sha[:12])
        from clone.github.client import GitHubClient  # PyGithub: imported when used, not at parse
        with GitHubClient.for_connection(settings.github_conn_id) as client:
            report = failure_report(client, result["github"], ci.get("runs") or [], settings.ci_log_max_lines)
        log.info("autofix: failing jobs handed to the agent:\n%s", report or "(none found)")
        ws = self._workspace(settings, sha)
        texts = prompts.load_texts(settings.core_prompt_file, settings.prompts_file)
        prompt = prompts.build_autofix_prompt(
            texts, repo_name=repo, sha=sha, attempt=attempt, max_attempts=settings.autofix_max_attempts,
            failure_report=report, docs=read_docs(ws.path), include_agents_md=settings.agent != "codex")
        skip_if_paused(repo)  # checked again on every attempt: a resumed task may find the switch on
        before = snapshot_protected(ws.path)
        try:
            agent_result = build_agent(settings).run(
                AgentRun(workdir=ws.path, prompt=prompt, repo_name=repo, pass_kind="autofix"))
        except AgentError as e:
            failed = getattr(e, "result", None)
            budget.record(settings.workspace, run_id, repo, "autofix", failed.total_tokens if failed else 0)
            restore_protected(ws.path, before, run_id)
            ref = keep_work(ws, ws.snapshot_tree(), sha, "autofix-failed")
            self._give_up(settings, context, ci, attempts=attempt,
                          why=f"the autofix agent failed ({e}); its partial work is kept at {ref}")
        budget.record(settings.workspace, run_id, repo, "autofix", agent_result.total_tokens)
        incidents = restore_protected(ws.path, before, run_id)
        for incident in incidents:
            memory.append_incident(ws.path, repo, incident)
        tree = ws.snapshot_tree()
        findings = guards.scan(ws, sha, tree, guards.GuardPolicy.from_settings(settings))
        if findings:
            log.warning("guards on the fix:\n%s", guards.render(findings))
        if guards.blocking(findings):
            keep_work(ws, tree, sha, "autofix-blocked")
            self._give_up(settings, context, ci, attempts=attempt,
                          why=f"the guards blocked the agent's fix: {guards.render(guards.blocking(findings))}")
        fix = commit_work(ws, sha, tree, commit_message("autofix", repo, run_id, agent_result.last_message,
                                                        agent_result.usage.get("total_tokens")),
                          leftovers=before.untracked)
        if fix is None:
            self._give_up(settings, context, ci, attempts=attempt,
                          why=f"the agent changed nothing on autofix attempt {attempt}")
        pushed = push_branch(ws, result.get("push_branch", result["branch"]))
        log.info("autofix: pushed %s; waiting for CI again", pushed[:12])
        event = self.watch_ci(settings, result["github"], pushed, method_name="ci_done",
                              echo={"attempt": attempt})
        return self.ci_done(context, event)

    def _give_up(self, settings: Settings, context: Any, ci: dict[str, Any], *, attempts: int, why: str) -> None:
        result = self.ci_result
        urls = ", ".join(str(run.get("html_url")) for run in ci.get("runs") or [])
        ws = self._workspace(settings, ci["sha"])
        record_incident(ws, result["branch"], result["repo"], memory.Incident(
            kind="ci-red",
            title=f"CI still failing on {result['branch']} after {attempts} autofix attempt(s)",
            what_happened=f"CI failed for commit {ci['sha'][:12]} pushed by Clone; {why}.",
            root_cause="See the failing job logs of the CI runs below; the automated fix did not resolve it.",
            prevention="A person should look at the failure; add what was learned to PROJECT_MEMORY.md and "
                       "a regression test that covers it.",
            context=f"run {context['run_id']}; CI runs: {urls or 'unknown'}",
        ), context["run_id"])
        raise CIFailed(f"{result['repo']}: {why}. CI runs: {urls or 'unknown'}")
