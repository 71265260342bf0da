"""The push step of a chain: the pass's commit to the repo's branch (direct) or to the chain's work branch
(gated, pr), never forced; in pr mode the pull request is opened here too. The ``push`` task is only the
Airflow glue around :func:`push_chain`."""

from __future__ import annotations

import logging
import re

from clone.config.settings import Settings
from clone.errors import ConfigError, PushConflict
from clone.github import pulls
from clone.work.chain import ChainResult
from clone.work.push import push_branch, record_push_conflict
from clone.work.workspace import workspace_git

log = logging.getLogger(__name__)


def work_branch(repo: str, run_id: str) -> str:
    """``clone/<repo>/<run>``: the branch a gated or pr pass pushes to."""
    return f"clone/{repo}/" + re.sub(r"[^A-Za-z0-9._-]+", "-", run_id).strip("-.")[:120]


def skip_reason(result: ChainResult, settings: Settings) -> str | None:
    """Why there is nothing to push (the push task skips with it), or None."""
    if not result.changed:
        return f"{result.repo}: the pass made no change; nothing to push"
    if settings.dry_run:
        return f"{result.repo}: dry run; the commit {result.head_sha[:12]} stays in the workspace {result.workdir}"
    if not result.has_remote:
        return f"{result.repo}: no remote; the commit stays in the workspace {result.workdir} (push skipped)"
    return None


def push_chain(settings: Settings, result: ChainResult, run_id: str) -> ChainResult:
    """Push the pass's commit where its push mode says, open the PR in pr mode; the result says where."""
    repo, mode = result.repo, result.push_mode
    if mode != "direct" and not result.github:
        raise ConfigError(f"{repo}: push_mode {mode} needs GitHub CI ('github: owner/name' in repos.yaml); "
                          "without it nothing could say the work is green")
    ws = workspace_git(settings, result.repo, result.workdir)
    target = result.branch if mode == "direct" else work_branch(repo, run_id)
    try:
        sha = push_branch(ws, target)
    except PushConflict as e:
        ref, where = record_push_conflict(ws, result.branch, repo, e, run_id, mode=mode,
                                          workspace=settings.workspace)
        raise PushConflict(f"{repo}: {e}; the work is kept at {ref} in {ws.path}; the push-conflict "
                           f"incident is {where}") from e
    pushed = result.but(pushed=True, pushed_sha=sha, push_branch=target)
    if mode != "pr":
        return pushed
    first_line = ((result.agent or {}).get("last_message") or "").strip().splitlines()
    title = f"clone: {first_line[0][:80]}" if first_line else f"clone: maintenance pass on {repo}"
    from clone.github.client import GitHubClient  # PyGithub: imported when used, not at parse
    with GitHubClient.for_connection(settings.github_conn_id) as api:
        pull = pulls.open_pull(api, str(result.github), head=target, base=result.branch, title=title,
                               body=pulls.render_body(pushed.to_json()))
    log.info("push: opened PR #%s for %s: %s", pull["number"], target, pull.get("html_url"))
    return pushed.but(pull={"number": pull["number"], "html_url": pull.get("html_url")})
