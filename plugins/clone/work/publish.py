"""The push step of a chain: the pass's commit to the repo's branch (direct) or to the chain's work branch
(gated, pr), never forced; in pr mode the pull request is opened here too. The ``push`` task is only the
Airflow glue around :func:`push_chain`."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from clone.config.settings import Settings
from clone.errors import ConfigError, PushConflict
from clone.github import pulls
from clone.util.git import Git
from clone.work.chain import ChainResult
from clone.work.push import push_branch, record_push_conflict
from clone.fleet.repos_file import RepoEntry
from clone.work.workspace import (attach, auth_for, drop_pending, identity, keep_on_remote, publish_pending,
                                  remote_url_of)

log = logging.getLogger(__name__)


def work_branch(repo: str, run_id: str) -> str:
    """``clone/<repo>/<run>``: the branch a gated or pr pass pushes to."""
    return f"clone/{repo}/" + re.sub(r"[^A-Za-z0-9._-]+", "-", run_id).strip("-.")[:120]


def hand_off(settings: Settings, result: ChainResult) -> ChainResult:
    """Put the pass's commit on the remote's pending ref, so that push, autofix and land find it from any
    worker (stateless chains). Without a remote, or in a dry run, it stays in this workspace only."""
    if not (result.changed and result.has_remote) or settings.dry_run:
        return result
    entry = RepoEntry.from_dict(result.entry)
    ws = Git(Path(result.workdir), identity(settings), auth_for(entry, settings, remote_url_of(entry)))
    return result.but(pending_ref=publish_pending(ws, result.run_id, result.repo, result.head_sha))


def chain_workspace(settings: Settings, result: ChainResult, sha: str) -> Git:
    """This worker's clone at ``sha``, a commit of the chain fetched from the remote (see ``attach``)."""
    return attach(RepoEntry.from_dict(result.entry), settings, result.branch, sha, result.pending_ref)


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
    ws = chain_workspace(settings, result, result.head_sha)
    target = result.branch if mode == "direct" else work_branch(repo, run_id)
    try:
        sha = push_branch(ws, target)
    except PushConflict as e:
        ref, where = record_push_conflict(ws, result.branch, repo, e, run_id, mode=mode,
                                          workspace=settings.workspace)
        kept = "on the remote and " if keep_on_remote(ws, ref) else ""
        if kept:
            drop_pending(ws, result.pending_ref)
        raise PushConflict(f"{repo}: {e}; the work is kept at {ref} {kept}in {ws.path}; the push-conflict "
                           f"incident is {where}") from e
    drop_pending(ws, result.pending_ref)  # the commit is on a branch now
    pushed = result.but(pushed=True, pushed_sha=sha, push_branch=target, pending_ref=None)
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
