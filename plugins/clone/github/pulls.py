"""Pull requests for the ``pr`` push mode: open (or reuse), describe, merge."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from clone.errors import GitHubError
from clone.github.api import GitHubApi

log = logging.getLogger(__name__)


def _message(answer) -> str:
    data = answer.data if isinstance(answer.data, dict) else {}
    parts = [str(data.get("message") or "no message")]
    parts += [str(e.get("message")) for e in data.get("errors") or [] if isinstance(e, dict) and e.get("message")]
    return "; ".join(parts)


def _checked(answer, what: str) -> Any:
    if not answer.ok:
        raise GitHubError(f"{what} answered {answer.status}{answer.tried}: {_message(answer)}")
    return answer.data


def _request(api: GitHubApi, method: str, path: str, what: str, **kwargs: Any):
    try:
        return api.request(method, path, **kwargs)
    except httpx.HTTPError as e:
        raise GitHubError(f"{what}: GitHub API unreachable after {api.retry.retries + 1} attempts "
                          f"({type(e).__name__}: {e})") from e


def _open_pull_for(api: GitHubApi, repo: str, head: str) -> dict[str, Any] | None:
    owner = repo.split("/", 1)[0]
    existing = _checked(_request(api, "GET", f"/repos/{repo}/pulls", f"GET {repo} pulls",
                                 params={"head": f"{owner}:{head}", "state": "open"}), f"GET {repo} pulls")
    return existing[0] if existing else None


def open_pull(api: GitHubApi, repo: str, *, head: str, base: str, title: str, body: str) -> dict[str, Any]:
    """Open a PR from ``head`` to ``base``, or return the open one that already exists for ``head``."""
    existing = _open_pull_for(api, repo, head)
    if existing:
        log.info("PR: reusing #%s %s", existing.get("number"), existing.get("html_url"))
        return existing
    answer = _request(api, "POST", f"/repos/{repo}/pulls", f"POST {repo} pulls",
                      json={"title": title, "head": head, "base": base, "body": body})
    if answer.status == 422 and "already exists" in _message(answer):
        # A retried POST whose first try opened the PR (the answer was lost), or a PR opened meanwhile.
        existing = _open_pull_for(api, repo, head)
        if existing:
            log.info("PR: #%s %s already exists (opened by an earlier attempt?): using it",
                     existing.get("number"), existing.get("html_url"))
            return existing
    pull = _checked(answer, f"POST {repo} pulls")
    log.info("PR: opened #%s %s", pull.get("number"), pull.get("html_url"))
    return pull


def update_body(api: GitHubApi, repo: str, number: int, body: str) -> None:
    _checked(_request(api, "PATCH", f"/repos/{repo}/pulls/{number}", f"PATCH PR #{number}", json={"body": body}),
             f"PATCH PR #{number}")


def merge(api: GitHubApi, repo: str, number: int, sha: str) -> str:
    """Merge PR ``number`` if its head is still ``sha``; returns the merge commit sha."""
    answer = _request(api, "PUT", f"/repos/{repo}/pulls/{number}/merge", f"PUT PR #{number} merge",
                      json={"sha": sha})
    if answer.status in (405, 409, 422):
        # A retried merge whose first try merged (the answer was lost) is refused now: look.
        pull = _checked(_request(api, "GET", f"/repos/{repo}/pulls/{number}", f"GET PR #{number}"),
                        f"GET PR #{number}")
        if isinstance(pull, dict) and pull.get("merged") and (pull.get("head") or {}).get("sha") == sha:
            log.info("PR: #%s is already merged at %s: nothing to do", number, sha[:12])
            return str(pull.get("merge_commit_sha") or "")
    data = _checked(answer, f"PUT PR #{number} merge")
    return str(data.get("sha", ""))


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
