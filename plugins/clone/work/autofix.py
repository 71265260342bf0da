"""One CI autofix attempt on a commit this chain pushed, through the agent session (so every rule of a
pass holds for the fix: restore, ledger, lease, guards, commit rule, the repo's steering). The
``autofix`` operator is only the Airflow glue (CI events, retries, deferral) around :func:`fix_ci`."""

from __future__ import annotations

import logging

from clone.checks import guards
from clone.config.settings import Settings
from clone.errors import AgentError, CloneError
from clone.fleet.repos_file import RepoEntry
from clone.memory import prompts
from clone.util.git import Git
from clone.work.session import AgentSession, GuardsBlocked, commit_message, read_docs, steering_file

log = logging.getLogger(__name__)


class FixFailed(CloneError):
    """The attempt left no fix to push; the message says why (and where partial work is kept)."""


def fix_ci(settings: Settings, ws: Git, entry: RepoEntry, *, run_id: str, sha: str, attempt: int,
           failure_report: str) -> str:
    """Let the agent fix the CI failure of ``sha`` (checked out in ``ws``); returns the fix commit."""
    session = AgentSession(settings, repo=entry.name, run_id=run_id, git=ws,
                           steering=steering_file(entry, settings, ws.path))
    prompt = prompts.build_autofix_prompt(
        session.texts(), repo_name=entry.name, sha=sha, attempt=attempt, max_attempts=settings.autofix_max_attempts,
        failure_report=failure_report, docs=read_docs(ws.path), include_agents_md=settings.agent != "codex")
    try:
        result = session.run_agent(prompt, "autofix")
    except AgentError as e:
        ref = session.keep(ws.snapshot_tree(), sha, "autofix-failed")
        raise FixFailed(f"the autofix agent failed ({e}); its partial work is kept at {ref}") from e
    try:
        fix, _ = session.finish(sha, ws.snapshot_tree(), commit_message(
            "autofix", entry.name, run_id, result.last_message, result.total_tokens or None), label="autofix-blocked")
    except GuardsBlocked as e:
        raise FixFailed(f"the guards blocked the agent's fix: {guards.render(e.findings)}") from e
    if fix is None:
        raise FixFailed(f"the agent changed nothing on autofix attempt {attempt}")
    return fix
