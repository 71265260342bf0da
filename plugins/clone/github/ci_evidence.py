"""A failed CI's evidence for the autofix: the failing jobs of the failed runs, their failing steps and
the cleaned tail of each log (:func:`failure_report`); asking GitHub to re-run failed jobs and reading a
commit's runs again (:func:`rerun_failed_jobs`, :func:`run_attempts`). One-shot calls through PyGithub
(``clone.github.client``), imported when evidence is fetched, not at DAG parse.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from clone.checks.redact import mask_secrets
from clone.github.ci_suites import GREEN, compact_run

if TYPE_CHECKING:
    from clone.github.client import GitHubClient

_TIMESTAMP = re.compile(r"^\ufeff?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")


def clean_log(text: str, max_lines: int) -> str:
    """Strip timestamps and colour codes, mask secrets, keep the last ``max_lines`` lines."""
    # Mask before cutting: a key block whose BEGIN line falls above the cut must still be masked.
    lines = [_ANSI.sub("", _TIMESTAMP.sub("", line)) for line in text.splitlines()]
    return "\n".join(mask_secrets("\n".join(lines)).splitlines()[-max_lines:])


def failure_report(client: GitHubClient, repo: str, runs: list[dict[str, Any]], max_lines: int) -> str:
    """The failing jobs of the failed runs: job, failing step, and the cleaned tail of its log."""
    from clone.github.client import failure

    sections = []
    for run in runs:
        if run.get("conclusion") in GREEN:
            continue
        path = f"/repos/{repo}/actions/runs/{run['id']}/jobs"
        try:
            jobs = list(client.github.get_repo(repo).get_workflow_run(int(run["id"])).jobs(_filter="latest"))
        except Exception as e:
            raise failure(f"GET {path}", e, client.retry) from e
        for job in jobs:
            if job.conclusion in GREEN or job.conclusion is None:
                continue
            steps = [s.name for s in job.steps or [] if s.conclusion not in GREEN | {None}]
            try:
                log_text = clean_log(_job_log(client, repo, job), max_lines)
            except Exception as e:  # the log is evidence, not a requirement
                log_text = f"(log unavailable: {e})"
            sections.append(
                f"### Workflow {run.get('name')!s} / job {job.name!s}: {job.conclusion}\n"
                f"Failing step(s): {', '.join(map(str, steps)) or 'unknown'}\n"
                f"URL: {job.html_url or run.get('html_url')}\n\n```\n{log_text}\n```"
            )
    return "\n\n".join(sections)


def _job_log(client: GitHubClient, repo: str, job) -> str:
    """A job's plain-text log: GitHub answers 302 to a pre-signed URL, fetched with no token."""
    from clone.github.client import failure

    try:
        url = job.logs_url()
    except Exception as e:
        raise failure(f"GET /repos/{repo}/actions/jobs/{job.id}/logs", e, client.retry) from e
    return client.download_text(url)


def rerun_failed_jobs(client: GitHubClient, repo: str, run_id: int) -> bool:
    """Ask GitHub to re-run a run's failed jobs (idempotent, so retried); True when it accepted."""
    from clone.github.client import failure

    try:
        return client.github.get_repo(repo).get_workflow_run(int(run_id)).rerun_failed_jobs()
    except Exception as e:
        raise failure(f"POST /repos/{repo}/actions/runs/{run_id}/rerun-failed-jobs", e, client.retry) from e


def run_attempts(client: GitHubClient, repo: str, sha: str) -> list[dict[str, Any]]:
    """The workflow runs for ``sha`` (compact: id, name, status, conclusion, html_url, run_attempt)."""
    from clone.github.client import failure

    try:
        runs = client.github.get_repo(repo).get_workflow_runs(head_sha=sha).get_page(0)
    except Exception as e:
        raise failure(f"GET /repos/{repo}/actions/runs", e, client.retry) from e
    return [compact_run(run.raw_data) for run in runs]
