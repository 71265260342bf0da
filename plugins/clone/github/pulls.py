"""Pull requests for the ``pr`` push mode: open (or reuse), describe, merge."""

from __future__ import annotations

import logging
from typing import Any

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clone.github.client import GitHubClient

# PyGithub is imported inside the functions: DAG files import this module at parse time.

log = logging.getLogger(__name__)


def _open_pull_for(client: GitHubClient, repo: str, head: str) -> dict[str, Any] | None:
    from clone.github.client import failure

    owner = repo.split("/", 1)[0]
    try:
        found = client.github.get_repo(repo).get_pulls(state="open", head=f"{owner}:{head}").get_page(0)
    except Exception as e:
        raise failure(f"GET {repo} pulls", e, client.retry) from e
    return dict(found[0].raw_data) if found else None


def open_pull(client: GitHubClient, repo: str, *, head: str, base: str, title: str, body: str) -> dict[str, Any]:
    """Open a PR from ``head`` to ``base``, or return the open one that already exists for ``head``."""
    from github import GithubException

    from clone.github.client import failure, message_of

    existing = _open_pull_for(client, repo, head)
    if existing:
        log.info("PR: reusing #%s %s", existing.get("number"), existing.get("html_url"))
        return existing
    try:
        pull = dict(client.github.get_repo(repo).create_pull(base=base, head=head, title=title, body=body).raw_data)
    except GithubException as e:
        if e.status != 422 or "already exists" not in message_of(e):
            raise failure(f"POST {repo} pulls", e, client.retry) from e
        # A retried POST whose first try opened the PR (the answer was lost), or a PR opened meanwhile.
        existing = _open_pull_for(client, repo, head)
        if not existing:
            raise failure(f"POST {repo} pulls", e, client.retry) from e
        log.info("PR: #%s %s already exists (opened by an earlier attempt?): using it",
                 existing.get("number"), existing.get("html_url"))
        return existing
    except Exception as e:
        raise failure(f"POST {repo} pulls", e, client.retry) from e
    log.info("PR: opened #%s %s", pull.get("number"), pull.get("html_url"))
    return pull


def update_body(client: GitHubClient, repo: str, number: int, body: str) -> None:
    from clone.github.client import failure

    try:
        client.github.get_repo(repo).get_pull(number).edit(body=body)
    except Exception as e:
        raise failure(f"PATCH PR #{number}", e, client.retry) from e


def merge(client: GitHubClient, repo: str, number: int, sha: str) -> str:
    """Merge PR ``number`` if its head is still ``sha``; returns the merge commit sha."""
    from github import GithubException

    from clone.github.client import failure

    pull = client.github.get_repo(repo).get_pull(number)
    try:
        return str(pull.merge(sha=sha).sha or "")
    except GithubException as e:
        if e.status not in (405, 409, 422):
            raise failure(f"PUT PR #{number} merge", e, client.retry) from e
        refused = e
    except Exception as e:
        raise failure(f"PUT PR #{number} merge", e, client.retry) from e
    # A retried merge whose first try merged (the answer was lost) is refused now: look.
    try:
        pull = client.github.get_repo(repo).get_pull(number)
        merged, head = pull.merged, pull.head.sha
    except Exception as e:
        raise failure(f"GET PR #{number}", e, client.retry) from e
    if merged and head == sha:
        log.info("PR: #%s is already merged at %s: nothing to do", number, sha[:12])
        return str(pull.merge_commit_sha or "")
    raise failure(f"PUT PR #{number} merge", refused, client.retry) from refused


def render_body(result: dict[str, Any], ci: dict[str, Any] | None = None) -> str:
    """What changed, the verification evidence and (once known) the CI result."""
    agent = result.get("agent") or {}
    lines = ["## What changed", "", (agent.get("last_message") or "(the agent left no summary)").strip(), "",
             "## Verification (run by Clone after the agent)", ""]
    checks = result.get("checks") or []
    lines += [f"- {'PASS' if c.get('ok') else 'FAIL'} {c.get('name')}: `{c.get('command')}` "
              f"(exit {c.get('exit_code')}, {c.get('duration')}s)" for c in checks] or ["- no checks detected"]
    lines += ["", "## CI", ""]
    if ci:
        lines.append(f"- {ci.get('status')}: {ci.get('message')}")
        lines += [f"- {run.get('name')}: {run.get('conclusion')} {run.get('html_url')}" for run in ci.get("runs") or []]
    else:
        lines.append("- waiting for CI")
    tokens = result.get("tokens")
    lines += ["", f"_Opened by Clone, run `{result.get('run_id', '')}`" + (f", {tokens} tokens" if tokens else "") + "._"]
    return "\n".join(lines) + "\n"
