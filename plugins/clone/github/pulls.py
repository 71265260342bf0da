"""Pull requests for the ``pr`` push mode: open (or reuse), describe, merge."""

from __future__ import annotations

import logging
from typing import Any

from clone.errors import GitHubError
from clone.github.api import GitHubApi

log = logging.getLogger(__name__)


def _checked(answer, what: str) -> Any:
    if not answer.ok:
        message = answer.data.get("message") if isinstance(answer.data, dict) else ""
        raise GitHubError(f"{what} answered {answer.status}: {message or 'no message'}")
    return answer.data


def open_pull(api: GitHubApi, repo: str, *, head: str, base: str, title: str, body: str) -> dict[str, Any]:
    """Open a PR from ``head`` to ``base``, or return the open one that already exists for ``head``."""
    owner = repo.split("/", 1)[0]
    existing = _checked(api.request("GET", f"/repos/{repo}/pulls",
                                    params={"head": f"{owner}:{head}", "state": "open"}), f"GET {repo} pulls")
    if existing:
        log.info("PR: reusing #%s %s", existing[0].get("number"), existing[0].get("html_url"))
        return existing[0]
    pull = _checked(api.request("POST", f"/repos/{repo}/pulls",
                                json={"title": title, "head": head, "base": base, "body": body}),
                    f"POST {repo} pulls")
    log.info("PR: opened #%s %s", pull.get("number"), pull.get("html_url"))
    return pull


def update_body(api: GitHubApi, repo: str, number: int, body: str) -> None:
    _checked(api.request("PATCH", f"/repos/{repo}/pulls/{number}", json={"body": body}), f"PATCH PR #{number}")


def merge(api: GitHubApi, repo: str, number: int, sha: str) -> str:
    """Merge PR ``number`` if its head is still ``sha``; returns the merge commit sha."""
    data = _checked(api.request("PUT", f"/repos/{repo}/pulls/{number}/merge", json={"sha": sha}),
                    f"PUT PR #{number} merge")
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
