"""A local, in-process fake of the part of the GitHub REST API that Clone uses.

Standard library only: a ``ThreadingHTTPServer`` on 127.0.0.1 in a daemon thread, JSON answers shaped like
GitHub's, and real bare git repositories (driven with the ``git`` CLI) behind created repos and merges.

Behaviour modelled on purpose (see /work/shared/STACK_NOTES.md, "GitHub behaviour worth designing for"):

* Auth: ``Authorization: token <t>`` or ``Bearer <t>``; anything else gets 401 "Bad credentials".
* Rate limit headers on every API answer. Every authenticated answer except 304 counts against the limit;
  conditional GETs (``If-None-Match`` with the current strong ETag) get an empty 304 that does not count.
  When the budget is used up, answers are 403 "API rate limit exceeded ..." until ``X-RateLimit-Reset``.
* CI is deterministic by poll count, never by wall time.  A workflow run for a sha exists only if the repo
  has workflows and (when it is backed by a bare repo) the sha is a commit there.  The first
  ``start_after_polls`` polls list no run ("checks not started yet"); then the run appears ``queued``,
  is ``in_progress`` on later polls and ``completed`` once it has been seen ``complete_after_polls`` more
  times.  A *poll* is a GET of ``.../actions/runs`` whose ``head_sha``/``branch`` filters match the run
  (with a bare repo, ``branch=B`` also asks about B's tip), or a GET of ``.../actions/runs/{id}``.
  A repo without workflows never gets runs ("no CI configured").
* Late workflows (``FakeRepo.late_workflows``): a second workflow (own name, path, outcome) whose run
  registers only on the ``after_polls``-th poll after the commit's first run was seen completed, as a
  ``workflow_run`` chain or a busy Actions queue does. With ``suite_early`` its check suite is listed
  (queued, no check run) from the moment the first run exists.
* Check suites: ``GET .../commits/{sha}/check-suites`` lists one ``github-actions`` suite per workflow run
  (its status and conclusion, ``latest_check_runs_count`` = its jobs), the early suites above, and for
  each slug in ``FakeRepo.stale_suite_apps`` a suite of that app that stays queued with no check run (an
  installed app that never reports). It is not a poll.
* Job logs: ``GET .../actions/jobs/{id}/logs`` answers 302 to a pre-signed-style download URL on this same
  server (``/_downloads/...``) that needs no Authorization, serves ``text/plain`` with GitHub-style
  timestamps and ANSI colours, and (like blob storage) carries no rate-limit headers and is not counted.
  Logs of a job that has not finished are 404.
* Pull request merges are fast-forward only (``update-ref``); real GitHub would create a merge commit.

Timestamps in JSON come from a logical clock (one second per event from 2026-11-24T10:00:00Z).

Usage::

    with FakeGitHub(token="tok", repos_root=tmp_path / "gh") as gh:
        gh.add_repo("acme/widget", bare_path=bare, ci=lambda sha, attempt: CIOutcome.failed())
        client = github.Github(base_url=gh.url, auth=github.Auth.Token("tok"),
                               seconds_between_requests=0, seconds_between_writes=0)

PyGithub throttles by default (0.25 s between requests, 1 s between writes): pass zeros in tests.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

HTML_BASE = "https://github.com"
DOCS_URL = "https://docs.github.com/rest"
RATE_LIMIT_MESSAGE = "API rate limit exceeded for user ID 1."
_EPOCH = datetime(2026, 11, 24, 10, 0, 0, tzinfo=timezone.utc)


# --------------------------------------------------------------------------------------------- CI model
@dataclass
class FakeJob:
    """One job of a CI outcome. ``steps`` defaults to set-up / ``Run <name>`` / complete."""

    name: str
    conclusion: str = "success"
    steps: list[tuple[str, str]] | None = None
    log: str = ""

    def step_list(self) -> list[tuple[str, str]]:
        if self.steps is not None:
            return list(self.steps)
        return [("Set up job", "success"), (f"Run {self.name}", self.conclusion), ("Complete job", "success")]


@dataclass
class CIOutcome:
    """What a workflow run attempt concludes with: the run conclusion and its jobs."""

    conclusion: str = "success"
    jobs: list[FakeJob] = field(default_factory=lambda: [FakeJob("build")])

    @classmethod
    def failed(cls, job: str = "build", step: str = "Run tests", log: str = "FAILED test_x") -> CIOutcome:
        """A run whose single job fails at ``step`` and prints ``log``."""
        steps = [("Set up job", "success"), (step, "failure"), ("Complete job", "success")]
        return cls("failure", [FakeJob(job, "failure", steps, log)])


CI = Callable[[str, int], CIOutcome]


@dataclass
class LateWorkflow:
    """A workflow whose run registers late: ``after_polls`` polls after the first run was seen completed."""

    name: str = "Lint"
    path: str = ".github/workflows/lint.yml"
    after_polls: int = 1
    ci: CI | None = None  # default: the repo's
    suite_early: bool = False  # its check suite is listed (queued, no check run) before its run


def default_ci(sha: str, attempt: int) -> CIOutcome:
    """Everything succeeds with one job called ``build``."""
    return CIOutcome()


# ------------------------------------------------------------------------------------------------- git
class BareRepo:
    """Thin wrapper over ``git -C <bare repo>`` for the few queries the fake needs."""

    _SHA = re.compile(r"[0-9a-fA-F]{4,64}")

    def __init__(self, path: Path):
        self.path = Path(path)

    @staticmethod
    def run(*args: str, cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_AUTHOR_NAME": "GitHub", "GIT_AUTHOR_EMAIL": "noreply@github.com",
               "GIT_COMMITTER_NAME": "GitHub", "GIT_COMMITTER_EMAIL": "noreply@github.com"}
        cmd = ["git", *(["-C", str(cwd)] if cwd else []), *args]
        return subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env, timeout=60)

    def git(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return self.run(*args, cwd=self.path, stdin=stdin)

    @classmethod
    def init(cls, path: Path, branch: str = "main") -> BareRepo:
        path.parent.mkdir(parents=True, exist_ok=True)
        proc = cls.run("init", "--bare", "-q", "-b", branch, str(path))
        if proc.returncode:
            raise RuntimeError(f"git init failed: {proc.stderr}")
        return cls(path)

    def has_commit(self, sha: str) -> bool:
        if not self._SHA.fullmatch(sha):
            return False
        return self.git("cat-file", "-e", f"{sha}^{{commit}}").returncode == 0

    def branch_sha(self, branch: str) -> str | None:
        proc = self.git("rev-parse", "--verify", "-q", f"refs/heads/{branch}^{{commit}}")
        return proc.stdout.strip() if proc.returncode == 0 else None

    def branches_containing(self, sha: str) -> list[str]:
        proc = self.git("for-each-ref", "--contains", sha, "--format=%(refname:short)", "refs/heads")
        return proc.stdout.split()

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self.git("merge-base", "--is-ancestor", ancestor, descendant).returncode == 0

    def workflow_files(self, rev: str) -> list[str]:
        proc = self.git("ls-tree", "--name-only", rev, ".github/workflows/")
        if proc.returncode:
            return []
        return [p for p in proc.stdout.split() if p.endswith((".yml", ".yaml"))]

    def update_ref(self, branch: str, new: str, old: str | None = None) -> bool:
        return self.git("update-ref", f"refs/heads/{branch}", new, *([old] if old else [])).returncode == 0

    def commit_file(self, branch: str, name: str, content: str, message: str) -> str:
        """Commit a single-file tree on ``branch`` (used for ``auto_init``)."""
        blob = self.git("hash-object", "-w", "--stdin", stdin=content).stdout.strip()
        tree = self.git("mktree", stdin=f"100644 blob {blob}\t{name}\n").stdout.strip()
        commit = self.git("commit-tree", tree, "-m", message).stdout.strip()
        self.update_ref(branch, commit)
        return commit


# --------------------------------------------------------------------------------------------- state
@dataclass
class RecordedRequest:
    """One request as the server saw it. ``status`` is None when the connection was dropped."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any = None
    status: int | None = None
    counted: bool = False
    delay: float = 0.0  # how long the answer was held back (a ``delay`` fault)


@dataclass
class FakeRepo:
    """A repository known to the fake. Attributes may be changed by tests at any time."""

    owner: str
    name: str
    id: int
    bare_path: Path | None = None
    workflows: bool | Literal["auto"] = True  # "auto": look for .github/workflows/*.yml in the commit
    default_branch: str = "main"
    ci: CI = default_ci
    start_after_polls: int = 0
    complete_after_polls: int = 1
    private: bool = False
    description: str | None = None
    pushed_at: datetime | None = None  # None: the fake's epoch (for listings sorted by push time)
    fork: bool = False
    archived: bool = False
    disabled: bool = False
    runs: dict[str, _Run] = field(default_factory=dict)  # by head sha
    waiting_polls: Counter = field(default_factory=Counter)  # polls seen before a sha's run started
    late_workflows: list[LateWorkflow] = field(default_factory=list)
    late_runs: list[_Run] = field(default_factory=list)  # runs of late_workflows, once registered
    done_polls: Counter = field(default_factory=Counter)  # polls seen after a sha's first run completed
    stale_suite_apps: list[str] = field(default_factory=list)  # apps whose suites stay queued, empty
    pulls: dict[int, _Pull] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def bare(self) -> BareRepo | None:
        return BareRepo(self.bare_path) if self.bare_path else None

    def has_ci_for(self, sha: str) -> bool:
        """Would pushing ``sha`` start a workflow run in this repo?"""
        bare = self.bare
        if not self.workflows or (bare and not bare.has_commit(sha)):
            return False
        if self.workflows == "auto":
            return bool(bare and bare.workflow_files(sha))
        return True


@dataclass
class _Job:
    id: int
    attempt: int
    spec: FakeJob
    started_at: str
    completed_at: str | None = None


@dataclass
class _Run:
    id: int
    repo: FakeRepo
    sha: str
    branch: str
    number: int
    created_at: str
    attempt: int = 0
    status: str = "queued"
    conclusion: str | None = None
    polls: int = 0  # times shown since the current attempt started
    started_at: str = ""
    updated_at: str = ""
    outcome: CIOutcome | None = None
    jobs: list[_Job] = field(default_factory=list)  # every attempt's jobs
    workflow: LateWorkflow | None = None  # None: the repo's own ``CI`` workflow
    suite_id: int = 0

    @property
    def name(self) -> str:
        return self.workflow.name if self.workflow else "CI"

    @property
    def path(self) -> str:
        return self.workflow.path if self.workflow else ".github/workflows/ci.yml"

    def job_done(self, job: _Job) -> bool:
        return job.attempt < self.attempt or self.status == "completed"


@dataclass
class _Pull:
    number: int
    id: int
    title: str
    body: str | None
    head: str
    base: str
    head_sha: str
    created_at: str
    state: str = "open"
    merged: bool = False
    merge_sha: str | None = None
    merged_at: str | None = None
    base_sha: str | None = None


@dataclass
class _Fault:
    pattern: re.Pattern
    method: str | None
    times: int
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    drop: bool = False
    after: bool = False  # handle the request first (the work is done), then answer with the fault
    delay: float = 0.0  # seconds to wait before answering (a slow GitHub: the client may time out)

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and (self.method in (None, method)) and bool(self.pattern.search(path))


@dataclass
class _Req:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any


@dataclass
class _Resp:
    status: int
    body: Any = None  # JSON-able, str (text/plain) or None (empty)
    headers: dict[str, str] = field(default_factory=dict)
    counted: bool = True  # False for /rate_limit and downloads

    def encode(self) -> tuple[bytes, str | None]:
        if self.body is None:
            return b"", None
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json; charset=utf-8"


class ApiError(Exception):
    """Raised by route handlers; becomes a GitHub-style JSON error answer."""

    def __init__(self, status: int, message: str, errors: list | None = None):
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors

    def response(self) -> _Resp:
        body: dict[str, Any] = {"message": self.message, "documentation_url": DOCS_URL}
        if self.errors is not None:
            body["errors"] = self.errors
        return _Resp(self.status, body)


def _not_found() -> ApiError:
    return ApiError(404, "Not Found")


def _validation(resource: str, field_: str, code: str = "invalid", message: str | None = None) -> ApiError:
    error = {"resource": resource, "field": field_, "code": code}
    if message:
        error["message"] = message
    return ApiError(422, "Validation Failed", [error])


def _pull_error(message: str) -> ApiError:
    error = {"resource": "PullRequest", "code": "custom", "message": message}
    return ApiError(422, "Validation Failed", [error])


# -------------------------------------------------------------------------------------------- server
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid 40 ms ACK stalls

    def setup(self) -> None:
        super().setup()
        self.server.fake._connections.add(self.connection)  # type: ignore[attr-defined]

    def finish(self) -> None:
        self.server.fake._connections.discard(self.connection)  # type: ignore[attr-defined]
        super().finish()

    def _serve(self) -> None:
        self.server.fake._serve(self)  # type: ignore[attr-defined]

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr logging
        pass


_REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
_ROUTES: list[tuple[str, str, str]] = [
    ("GET", r"/user", "_get_user"),
    ("GET", r"/users/(?P<login>[^/]+)", "_get_account"),
    ("GET", r"/orgs/(?P<org>[^/]+)", "_get_org"),
    ("GET", r"/rate_limit", "_get_rate_limit"),
    ("POST", r"/app/installations/(?P<installation>\d+)/access_tokens", "_create_installation_token"),
    ("POST", r"/user/repos", "_create_user_repo"),
    ("POST", r"/orgs/(?P<org>[^/]+)/repos", "_create_org_repo"),
    ("GET", r"/user/repos", "_list_my_repos"),
    ("GET", r"/users/(?P<login>[^/]+)/repos", "_list_user_repos"),
    ("GET", r"/orgs/(?P<org>[^/]+)/repos", "_list_org_repos"),
    ("GET", _REPO, "_get_repo"),
    ("GET", _REPO + r"/actions/workflows", "_list_workflows"),
    ("GET", _REPO + r"/actions/runs", "_list_runs"),
    ("GET", _REPO + r"/commits/(?P<ref>[^/]+)/check-suites", "_list_check_suites"),
    ("GET", _REPO + r"/actions/runs/(?P<run_id>\d+)", "_get_run"),
    ("GET", _REPO + r"/actions/runs/(?P<run_id>\d+)/jobs", "_list_jobs"),
    ("POST", _REPO + r"/actions/runs/(?P<run_id>\d+)/rerun-failed-jobs", "_rerun_failed_jobs"),
    ("GET", _REPO + r"/actions/jobs/(?P<job_id>\d+)", "_get_job"),
    ("GET", _REPO + r"/actions/jobs/(?P<job_id>\d+)/logs", "_get_job_logs"),
    ("GET", _REPO + r"/pulls", "_list_pulls"),
    ("POST", _REPO + r"/pulls", "_create_pull"),
    ("GET", _REPO + r"/pulls/(?P<number>\d+)", "_get_pull"),
    ("PUT", _REPO + r"/pulls/(?P<number>\d+)/merge", "_merge_pull"),
    ("PATCH", _REPO + r"/pulls/(?P<number>\d+)", "_update_pull"),
]
_COMPILED = [(m, re.compile(p + r"/?"), h) for m, p, h in _ROUTES]


class FakeGitHub:
    """The fake GitHub API server. Starts on construction; use as a context manager or call ``close()``."""

    def __init__(self, token: str = "tok", repos_root: Path | str | None = None, *, login: str = "clone-bot",
                 rate_limit: int = 5000, host: str = "127.0.0.1"):
        self.token, self.login = token, login
        self._own_root = repos_root is None
        self.repos_root = Path(repos_root or tempfile.mkdtemp(prefix="fake-github-")).resolve()
        self.created_repo_defaults: dict[str, Any] = {"workflows": "auto"}  # add_repo kwargs for POSTed repos
        self.server_errors: list[str] = []  # crashes of the fake (answered 500): tests assert it stays empty
        self._lock = threading.RLock()
        self._ids = itertools.count(1001)
        self._ticks = itertools.count()
        self._repos: dict[str, FakeRepo] = {}
        self._orgs: dict[str, int] = {}
        self._runs: dict[int, _Run] = {}
        self._jobs: dict[int, tuple[_Run, _Job]] = {}
        self._download_tokens: dict[str, int] = {}
        self._faults: list[_Fault] = []
        self._requests: list[RecordedRequest] = []
        self._connections: set[socket.socket] = set()
        self.rate_limit, self._used, self._reset = rate_limit, 0, int(time.time()) + 3600
        self._server = ThreadingHTTPServer((host, 0), _Handler)
        self._server.fake = self  # type: ignore[attr-defined]
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-github", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------------------------- lifecycle
    def __enter__(self) -> FakeGitHub:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving, drop open keep-alive connections (idempotent)."""
        if self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        for conn in list(self._connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)
        self._thread = None  # type: ignore[assignment]
        if self._own_root:
            shutil.rmtree(self.repos_root, ignore_errors=True)

    # ------------------------------------------------------------------------------ test set-up API
    def add_repo(self, full_name: str, bare_path: Path | None = None,
                 workflows: bool | Literal["auto"] = True, default_branch: str = "main",
                 ci: CI | None = None, start_after_polls: int = 0, complete_after_polls: int = 1,
                 private: bool = False, description: str | None = None, *, pushed_at: datetime | None = None,
                 fork: bool = False, archived: bool = False, disabled: bool = False) -> FakeRepo:
        """Register an existing repo (optionally backed by a real bare git repo) and return its state."""
        owner, name = full_name.split("/")
        repo = FakeRepo(owner, name, next(self._ids), Path(bare_path).resolve() if bare_path else None,
                        workflows, default_branch, ci or default_ci, start_after_polls, complete_after_polls,
                        private, description, pushed_at, fork, archived, disabled)
        with self._lock:
            self._repos[full_name.lower()] = repo
        return repo

    def add_org(self, name: str) -> None:
        """Register an organisation the token may create repos in."""
        with self._lock:
            self._orgs.setdefault(name.lower(), next(self._ids))

    def repo(self, full_name: str) -> FakeRepo:
        """The state of a registered or created repo (KeyError if unknown)."""
        return self._repos[full_name.lower()]

    def run_for(self, full_name: str, sha: str) -> dict | None:
        """Current JSON of the run for ``sha`` without counting a poll, or None if it has not started."""
        with self._lock:
            run = self.repo(full_name).runs.get(sha)
            return self._run_json(run) if run else None

    def set_run_state(self, full_name: str, sha: str, status: str, conclusion: str | None = None,
                      branch: str | None = None) -> dict:
        """Force the run for ``sha`` (created if needed) into ``status``; ``completed`` may override the
        conclusion the ci callable gave. Later polls continue from the forced state."""
        with self._lock:
            repo = self.repo(full_name)
            run = repo.runs.get(sha) or self._create_run(repo, sha, branch)
            if status == "completed":
                self._complete(run, conclusion)
            else:
                run.status, run.conclusion = status, None
                run.polls = 0 if status == "queued" else max(run.polls, 1)
                run.updated_at = self._now()
            return self._run_json(run)

    # ------------------------------------------------------------------------------ fault injection
    def inject(self, path_regex: str, status: int, times: int = 1, headers: dict[str, str] | None = None,
               body: Any = None, method: str | None = None, after: bool = False, delay: float = 0.0) -> None:
        """Answer the next ``times`` requests whose path matches with ``status`` (before auth and routing).
        ``body`` may be JSON-able or text; default ``{"message": <reason>}``. ``headers`` override ours.
        ``after=True``: handle the request as usual first (the repo/PR/merge happens), then answer with
        the fault instead, as a gateway that lost GitHub's answer does. ``delay``: answer that late.
        ``status=0`` with ``after=True``: the usual answer (only the delay is the fault)."""
        with self._lock:
            fault = _Fault(re.compile(path_regex), method, times, status, dict(headers or {}), body, after=after,
                           delay=delay)
            self._faults.append(fault)

    def network_drop(self, path_regex: str, times: int = 1, method: str | None = None,
                     after: bool = False) -> None:
        """Close the connection without answering the next ``times`` matching requests
        (``after=True``: after handling them, so the work is done but its answer lost)."""
        with self._lock:
            self._faults.append(_Fault(re.compile(path_regex), method, times, drop=True, after=after))

    def rate_limit_exhausted(self, reset_in_seconds: int = 60, times: int = 1, path_regex: str = ".",
                             secondary: bool = False, status: int = 403) -> int:
        """Inject ``times`` rate-limit answers and return the reset epoch.

        Primary: ``X-RateLimit-Remaining: 0`` and ``X-RateLimit-Reset`` = now + ``reset_in_seconds``.
        Secondary (``secondary=True``): ``Retry-After: reset_in_seconds``."""
        reset = int(time.time()) + reset_in_seconds
        if secondary:
            headers = {"Retry-After": str(reset_in_seconds)}
            message = ("You have exceeded a secondary rate limit. "
                       "Please wait a few minutes before you try again.")
        else:
            headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset),
                       "X-RateLimit-Used": str(self.rate_limit)}
            message = RATE_LIMIT_MESSAGE
        self.inject(path_regex, status, times, headers, {"message": message, "documentation_url": DOCS_URL})
        return reset

    # ----------------------------------------------------------------------------- request records
    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def count(self, method: str | None = None, path_regex: str | None = None) -> int:
        """How many requests matched ``method`` and ``path_regex`` (``re.search`` on the path)."""
        return sum(1 for r in self.requests if method in (None, r.method)
                   and (path_regex is None or re.search(path_regex, r.path)))

    @property
    def counted_requests(self) -> int:
        """Requests that counted against the rate limit."""
        return sum(r.counted for r in self.requests)

    @property
    def total_requests(self) -> int:
        return len(self.requests)

    def reset_rate_limit(self) -> None:
        """Start a fresh rate-limit window with the full budget."""
        with self._lock:
            self._used, self._reset = 0, int(time.time()) + 3600

    @property
    def rate_limit_remaining(self) -> int:
        with self._lock:
            self._maybe_reset_window()
            return max(self.rate_limit - self._used, 0)

    # ------------------------------------------------------------------------------------ plumbing
    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        """Read one request, answer it (or drop the connection), record it."""
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        req = _Req(handler.command, split.path, dict(parse_qsl(split.query)),
                   {k.lower(): v for k, v in handler.headers.items()}, body)
        record = RecordedRequest(req.method, req.path, req.query, req.headers, body)
        with self._lock:
            self._requests.append(record)
            resp = self._answer(req, record)
        if record.delay:
            time.sleep(record.delay)
        if resp is None:
            handler.close_connection = True
            return
        self._write(handler, resp)

    def _write(self, handler: BaseHTTPRequestHandler, resp: _Resp) -> None:
        data, content_type = resp.encode()
        handler.send_response(resp.status)
        if content_type:
            handler.send_header("Content-Type", content_type)
        for name, value in resp.headers.items():
            handler.send_header(name, str(value))
        if resp.status != 304:
            handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if handler.command != "HEAD" and resp.status != 304:
            handler.wfile.write(data)

    def _answer(self, req: _Req, record: RecordedRequest) -> _Resp | None:
        """Decide the answer (called with the lock held). None means: drop the connection."""
        if req.path.startswith("/_downloads/"):
            resp = self._serve_download(req)
            record.status = resp.status
            return resp
        fault = next((f for f in self._faults if f.matches(req.method, req.path)), None)
        if fault:
            fault.times -= 1
            record.delay = fault.delay
            if fault.after and not fault.status and not fault.drop:
                fault = None  # a slow but normal answer
            elif fault.after:
                self._route(req)  # the work happens; its answer is lost
            if fault is not None and fault.drop:
                return None
        authed = self._authorized(req)
        if fault:
            body = fault.body if fault.body is not None else {"message": _reason(fault.status)}
            resp = _Resp(fault.status, body, dict(fault.headers))
        elif not authed:
            resp = _Resp(401, {"message": "Bad credentials", "documentation_url": DOCS_URL})
        else:
            resp = self._route(req)
        resp = self._conditional(req, resp)
        record.counted = authed and resp.counted and resp.status != 304
        self._add_rate_headers(resp, record.counted)
        resp.headers.setdefault("X-GitHub-Request-Id", secrets.token_hex(8).upper())
        record.status = resp.status
        return resp

    def _authorized(self, req: _Req) -> bool:
        scheme, _, value = req.headers.get("authorization", "").partition(" ")
        if re.fullmatch(r"/app/installations/\d+/access_tokens/?", req.path):
            return scheme.lower() == "bearer" and self._valid_app_jwt(value.strip())
        return scheme.lower() in ("token", "bearer") and (value.strip() == self.token or value.strip() in
                                                          getattr(self, "app_tokens_issued", ()))

    # --------------------------------------------------------------------------------- GitHub App
    def enable_app(self, app_id: int, public_key_pem: str, installation_id: int, lifetime: int = 3600) -> None:
        """Accept RS256 JWTs of ``app_id`` signed by the key whose public half is ``public_key_pem``; an
        installation token it grants for ``installation_id`` is accepted (as ``token``) until the fake closes."""
        self.app = {"id": app_id, "key": public_key_pem, "installation": installation_id, "lifetime": lifetime}
        self.app_tokens_issued: list[str] = []
        self.app_jwts_rejected = 0

    def _valid_app_jwt(self, value: str) -> bool:
        import jwt  # PyJWT, as PyGithub signs with it

        app = getattr(self, "app", None)
        if app is None:
            return False
        try:
            claims = jwt.decode(value, app["key"], algorithms=["RS256"], options={"require": ["iat", "exp", "iss"]})
        except jwt.PyJWTError:
            self.app_jwts_rejected += 1
            return False
        if str(claims["iss"]) != str(app["id"]) or claims["exp"] - claims["iat"] > 660:  # GitHub: at most 10 min
            self.app_jwts_rejected += 1
            return False
        return True

    def _create_installation_token(self, req: _Req, installation: str) -> _Resp:
        if int(installation) != self.app["installation"]:
            raise _not_found()
        token = "ghs_" + secrets.token_hex(18)
        self.app_tokens_issued.append(token)
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + self.app["lifetime"]))
        return _Resp(201, {"token": token, "expires_at": expires, "permissions": {"contents": "write"},
                           "repository_selection": "all"})

    def _route(self, req: _Req) -> _Resp:
        self._maybe_reset_window()
        if self._used >= self.rate_limit and req.path != "/rate_limit":
            return ApiError(403, RATE_LIMIT_MESSAGE).response()
        for method, pattern, name in _COMPILED:
            match = pattern.fullmatch(req.path)
            if match and method == req.method:
                try:
                    return getattr(self, name)(req, **match.groupdict())
                except ApiError as exc:
                    return exc.response()
                except Exception as exc:  # a bug in the fake: answer 500 and remember it
                    self.server_errors.append(f"{req.method} {req.path}: {exc!r}")
                    return _Resp(500, {"message": f"fake GitHub crashed: {exc!r}"})
        return _not_found().response()

    def _conditional(self, req: _Req, resp: _Resp) -> _Resp:
        """Add a strong ETag to JSON GET answers; answer 304 when If-None-Match matches it."""
        if req.method != "GET" or resp.status != 200 or isinstance(resp.body, str) or resp.body is None:
            return resp
        etag = '"' + hashlib.sha256(resp.encode()[0]).hexdigest()[:40] + '"'
        resp.headers["ETag"] = etag
        wanted = [t.strip().removeprefix("W/") for t in req.headers.get("if-none-match", "").split(",")]
        if etag in wanted or "*" in wanted:
            return _Resp(304, None, {"ETag": etag}, counted=False)
        return resp

    def _maybe_reset_window(self) -> None:
        if time.time() >= self._reset:
            self._used, self._reset = 0, int(time.time()) + 3600

    def _add_rate_headers(self, resp: _Resp, counted: bool) -> None:
        if counted and self._used < self.rate_limit:
            self._used += 1
        given = {k.lower() for k in resp.headers}
        for name, value in self._rate_state().items():
            header = f"X-RateLimit-{name.title()}"
            if header.lower() not in given:
                resp.headers[header] = str(value)

    def _rate_state(self) -> dict[str, Any]:
        remaining = max(self.rate_limit - self._used, 0)
        return {"limit": self.rate_limit, "remaining": remaining, "reset": self._reset, "used": self._used,
                "resource": "core"}

    def _now(self) -> str:
        return _iso(_EPOCH + timedelta(seconds=next(self._ticks)))

    def _paginate(self, req: _Req, items: list, key: str) -> _Resp:
        """Slice ``items`` by ``per_page``/``page`` and add GitHub's ``Link`` header."""
        per_page = min(max(_int(req.query.get("per_page"), 30), 1), 100)
        page = max(_int(req.query.get("page"), 1), 1)
        pages = max(math.ceil(len(items) / per_page), 1)
        body = {"total_count": len(items), key: items[(page - 1) * per_page: page * per_page]}
        links = {"prev": page - 1, "next": page + 1, "first": 1, "last": pages}
        wanted = ("next", "last") if page < pages else ()
        wanted += ("prev", "first") if page > 1 else ()
        link = ", ".join(f'<{self.url}{req.path}?{urlencode({**req.query, "page": links[rel]})}>; rel="{rel}"'
                         for rel in wanted)
        return _Resp(200, body, {"Link": link} if link else {})

    def _paginate_list(self, req: _Req, items: list) -> _Resp:
        """A JSON array sliced by ``per_page``/``page`` with GitHub's ``Link`` header (list endpoints)."""
        resp = self._paginate(req, items, "items")
        resp.body = resp.body["items"]
        return resp

    # ------------------------------------------------------------------------------ users & orgs
    def _user_json(self, login: str | None = None) -> dict:
        login = login or self.login
        return {"login": login, "id": 1 if login == self.login else _stable_id(login), "type": "User",
                "url": f"{self.url}/users/{login}", "html_url": f"{HTML_BASE}/{login}"}

    def _org_json(self, org: str) -> dict:
        return {"login": org, "id": self._orgs[org.lower()], "type": "Organization",
                "url": f"{self.url}/orgs/{org}", "repos_url": f"{self.url}/orgs/{org}/repos",
                "html_url": f"{HTML_BASE}/{org}"}

    def _get_user(self, req: _Req) -> _Resp:
        return _Resp(200, self._user_json())

    def _get_account(self, req: _Req, login: str) -> _Resp:
        if login.lower() in self._orgs:
            return _Resp(200, self._org_json(login))
        if login == self.login or any(r.owner == login for r in self._repos.values()):
            return _Resp(200, self._user_json(login))
        raise _not_found()

    def _get_org(self, req: _Req, org: str) -> _Resp:
        if org.lower() not in self._orgs:
            raise _not_found()
        return _Resp(200, self._org_json(org))

    def _get_rate_limit(self, req: _Req) -> _Resp:
        core = self._rate_state()
        return _Resp(200, {"resources": {"core": core}, "rate": core}, counted=False)

    # ------------------------------------------------------------------------------------- repos
    def _repo_or_404(self, owner: str, repo: str) -> FakeRepo:
        found = self._repos.get(f"{owner}/{repo}".lower())
        if found is None:
            raise _not_found()
        return found

    def _repo_json(self, repo: FakeRepo) -> dict:
        api = f"{self.url}/repos/{repo.full_name}"
        if repo.bare_path:
            clone_url = ssh_url = repo.bare_path.as_uri()
        else:
            clone_url, ssh_url = f"{HTML_BASE}/{repo.full_name}.git", f"git@github.com:{repo.full_name}.git"
        is_org = repo.owner.lower() in self._orgs
        owner = self._org_json(repo.owner) if is_org else self._user_json(repo.owner)
        return {"id": repo.id, "node_id": f"R_{repo.id}", "name": repo.name, "full_name": repo.full_name,
                "private": repo.private, "visibility": "private" if repo.private else "public",
                "owner": owner,
                "description": repo.description, "fork": repo.fork, "archived": repo.archived,
                "disabled": repo.disabled, "pushed_at": _iso(repo.pushed_at or _EPOCH),
                "url": api, "html_url": f"{HTML_BASE}/{repo.full_name}", "clone_url": clone_url,
                "ssh_url": ssh_url, "default_branch": repo.default_branch,
                "permissions": {"admin": True, "push": True, "pull": True}}

    def _list_repos(self, req: _Req, repos: list[FakeRepo], default_sort: str) -> _Resp:
        """GitHub's repository listings: ``sort`` (created, updated, pushed, full_name) and ``direction``
        (default asc for full_name, else desc), paginated."""
        sort = req.query.get("sort") or default_sort
        if sort not in ("created", "updated", "pushed", "full_name"):
            raise _validation("Repository", "sort")
        direction = req.query.get("direction") or ("asc" if sort == "full_name" else "desc")

        def key(repo: FakeRepo) -> Any:
            if sort == "full_name":
                return repo.full_name.lower()
            if sort == "pushed":
                return (repo.pushed_at or _EPOCH, repo.id)
            return repo.id  # created/updated: registration order

        ordered = sorted(repos, key=key, reverse=direction == "desc")
        return self._paginate_list(req, [self._repo_json(r) for r in ordered])

    def _list_org_repos(self, req: _Req, org: str) -> _Resp:
        if org.lower() not in self._orgs:
            raise _not_found()
        kind = req.query.get("type") or "all"

        def wanted(repo: FakeRepo) -> bool:
            if kind in ("forks", "sources"):
                return repo.fork == (kind == "forks")
            return kind in ("all", "member") or kind == ("private" if repo.private else "public")

        repos = [r for r in self._repos.values() if r.owner.lower() == org.lower() and wanted(r)]
        return self._list_repos(req, repos, "created")

    def _list_user_repos(self, req: _Req, login: str) -> _Resp:
        """Another account's repositories: public ones only (as GitHub shows them to anyone else)."""
        repos = [r for r in self._repos.values() if r.owner.lower() == login.lower() and not r.private]
        if not repos and login.lower() != self.login.lower() and login.lower() not in self._orgs:
            raise _not_found()
        return self._list_repos(req, repos, "full_name")

    def _list_my_repos(self, req: _Req) -> _Resp:
        """The token's own repositories, private ones included (``affiliation=owner``)."""
        repos = [r for r in self._repos.values() if r.owner.lower() == self.login.lower()]
        return self._list_repos(req, repos, "full_name")

    def _get_repo(self, req: _Req, owner: str, repo: str) -> _Resp:
        return _Resp(200, self._repo_json(self._repo_or_404(owner, repo)))

    def _create_user_repo(self, req: _Req) -> _Resp:
        return self._create_repo(self.login, req)

    def _create_org_repo(self, req: _Req, org: str) -> _Resp:
        if org.lower() not in self._orgs:
            raise _not_found()
        return self._create_repo(org, req)

    def _create_repo(self, owner: str, req: _Req) -> _Resp:
        """Create a real bare repo under ``repos_root/<owner>/<name>.git`` and register it."""
        data = req.json if isinstance(req.json, dict) else {}
        name = data.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9._-]+", name) or name in (".", ".."):
            raise _validation("Repository", "name", "missing_field" if not name else "invalid")
        path = self.repos_root / owner / f"{name}.git"
        if f"{owner}/{name}".lower() in self._repos or path.exists():
            raise ApiError(422, "Repository creation failed.", [
                {"resource": "Repository", "code": "custom", "field": "name",
                 "message": "name already exists on this account"}])
        bare = BareRepo.init(path, "main")
        if data.get("auto_init"):
            readme = f"# {name}\n\n{data.get('description') or ''}\n"
            bare.commit_file("main", "README.md", readme, "Initial commit")
        options = {**self.created_repo_defaults, "private": bool(data.get("private")),
                   "description": data.get("description")}
        repo = self.add_repo(f"{owner}/{name}", bare_path=path, **options)
        return _Resp(201, self._repo_json(repo))

    def _list_workflows(self, req: _Req, owner: str, repo: str) -> _Resp:
        r = self._repo_or_404(owner, repo)
        if r.workflows == "auto":
            tip = r.bare.branch_sha(r.default_branch) if r.bare else None
            paths = r.bare.workflow_files(tip) if r.bare and tip else []
        else:
            paths = [".github/workflows/ci.yml"] if r.workflows else []
        workflows = [self._workflow_json(r, path) for path in paths]
        return _Resp(200, {"total_count": len(workflows), "workflows": workflows})

    def _workflow_json(self, repo: FakeRepo, path: str) -> dict:
        workflow_id = _stable_id(f"{repo.full_name}:{path}")
        return {"id": workflow_id, "node_id": f"W_{workflow_id}", "path": path, "state": "active",
                "name": "CI" if path.endswith("/ci.yml") else Path(path).stem,
                "url": f"{self.url}/repos/{repo.full_name}/actions/workflows/{workflow_id}",
                "html_url": f"{HTML_BASE}/{repo.full_name}/blob/{repo.default_branch}/{path}",
                "created_at": _iso(_EPOCH), "updated_at": _iso(_EPOCH)}

    # ------------------------------------------------------------------------------- actions: runs
    def _create_run(self, repo: FakeRepo, sha: str, branch: str | None = None,
                    workflow: LateWorkflow | None = None) -> _Run:
        if branch is None:
            branches = repo.bare.branches_containing(sha) if repo.bare else []
            branch = repo.default_branch if repo.default_branch in branches or not branches else branches[0]
        number = len(repo.runs) + len(repo.late_runs) + 1
        run = _Run(next(self._ids) * 1000, repo, sha, branch, number, created_at=self._now(),
                   workflow=workflow, suite_id=next(self._ids))
        if workflow is None:
            repo.runs[sha] = run
        else:
            repo.late_runs.append(run)
        self._runs[run.id] = run
        self._start_attempt(run)
        return run

    def _start_attempt(self, run: _Run) -> None:
        """Begin attempt ``run.attempt + 1``: ask the ci callable for its outcome and queue its jobs."""
        run.attempt += 1
        run.status, run.conclusion, run.polls = "queued", None, 0
        run.started_at = run.updated_at = self._now()
        run.outcome = ((run.workflow and run.workflow.ci) or run.repo.ci)(run.sha, run.attempt)
        for spec in run.outcome.jobs:
            job = _Job(next(self._ids) * 1000 + 1, run.attempt, spec, run.started_at)
            run.jobs.append(job)
            self._jobs[job.id] = (run, job)
        self._settle(run)

    def _settle(self, run: _Run) -> None:
        """Move an unfinished run along according to how many polls it has seen."""
        if run.status == "completed":
            return
        if run.polls >= run.repo.complete_after_polls:
            self._complete(run)
        elif run.polls > 0 and run.status != "in_progress":
            run.status, run.updated_at = "in_progress", self._now()

    def _complete(self, run: _Run, conclusion: str | None = None) -> None:
        run.status = "completed"
        run.conclusion = conclusion or (run.outcome.conclusion if run.outcome else "success")
        run.updated_at = self._now()
        for job in run.jobs:
            if job.attempt == run.attempt and job.completed_at is None:
                job.completed_at = run.updated_at

    def _observe(self, run: _Run) -> None:
        """Count one poll of an existing run."""
        if run.status != "completed":
            run.polls += 1
            self._settle(run)

    def _poll_sha(self, repo: FakeRepo, sha: str, branch: str | None) -> None:
        """A poll that asked about ``sha`` before its run exists: maybe CI starts now (or a late workflow)."""
        if sha in repo.runs:
            if repo.runs[sha].status == "completed":
                repo.done_polls[sha] += 1
            registered = {id(run.workflow) for run in repo.late_runs if run.sha == sha}
            for late in repo.late_workflows:
                if id(late) not in registered and repo.done_polls[sha] > late.after_polls:
                    self._create_run(repo, sha, repo.runs[sha].branch, late)
            return
        if not repo.has_ci_for(sha):
            return
        repo.waiting_polls[sha] += 1
        if repo.waiting_polls[sha] > repo.start_after_polls:
            self._create_run(repo, sha, branch)

    def _list_runs(self, req: _Req, owner: str, repo: str) -> _Resp:
        r = self._repo_or_404(owner, repo)
        sha, branch, status = (req.query.get(k) for k in ("head_sha", "branch", "status"))

        def selected() -> list[_Run]:
            return [run for run in [*r.runs.values(), *r.late_runs]
                    if (not sha or run.sha == sha) and (not branch or run.branch == branch)]

        for run in selected():
            self._observe(run)
        target = sha or (branch and r.bare and r.bare.branch_sha(branch))
        if target:
            self._poll_sha(r, target, branch)
        runs = sorted((run for run in selected() if status in (None, run.status, run.conclusion)),
                      key=lambda run: -run.id)
        return self._paginate(req, [self._run_json(run) for run in runs], "workflow_runs")

    def _run_or_404(self, owner: str, repo: str, run_id: str) -> _Run:
        run = self._runs.get(int(run_id))
        if run is None or run.repo is not self._repo_or_404(owner, repo):
            raise _not_found()
        return run

    def _get_run(self, req: _Req, owner: str, repo: str, run_id: str) -> _Resp:
        run = self._run_or_404(owner, repo, run_id)
        self._observe(run)
        return _Resp(200, self._run_json(run))

    def _rerun_failed_jobs(self, req: _Req, owner: str, repo: str, run_id: str) -> _Resp:
        run = self._run_or_404(owner, repo, run_id)
        if run.status != "completed":
            raise ApiError(403, "This workflow is already running")
        self._start_attempt(run)
        return _Resp(201, {})

    def _run_json(self, run: _Run) -> dict:
        r = run.repo
        api = f"{self.url}/repos/{r.full_name}/actions/runs/{run.id}"
        workflow_id = _stable_id(f"{r.full_name}:{run.path}")
        return {
            "id": run.id, "name": run.name, "node_id": f"WFR_{run.id}", "head_branch": run.branch,
            "head_sha": run.sha, "path": run.path, "display_title": f"{run.name} {run.sha[:7]}",
            "check_suite_id": run.suite_id,
            "run_number": run.number, "event": "push", "status": run.status, "conclusion": run.conclusion,
            "workflow_id": workflow_id, "run_attempt": run.attempt, "url": api,
            "html_url": f"{HTML_BASE}/{r.full_name}/actions/runs/{run.id}", "jobs_url": f"{api}/jobs",
            "logs_url": f"{api}/logs", "cancel_url": f"{api}/cancel", "rerun_url": f"{api}/rerun",
            "previous_attempt_url": f"{api}/attempts/{run.attempt - 1}" if run.attempt > 1 else None,
            "workflow_url": f"{self.url}/repos/{r.full_name}/actions/workflows/{workflow_id}",
            "created_at": run.created_at, "updated_at": run.updated_at, "run_started_at": run.started_at,
            "pull_requests": [], "actor": self._user_json(), "triggering_actor": self._user_json(),
            "repository": self._repo_json(r), "head_repository": self._repo_json(r),
        }

    # ------------------------------------------------------------------------------------ check suites
    def _list_check_suites(self, req: _Req, owner: str, repo: str, ref: str) -> _Resp:
        """The commit's check suites: one per workflow run, early suites of late workflows, stale apps."""
        r = self._repo_or_404(owner, repo)
        sha = (r.bare.branch_sha(ref) if r.bare else None) or ref
        runs = [run for run in [*r.runs.values(), *r.late_runs] if run.sha == sha]
        suites = [self._suite_json(run.suite_id, sha, run.branch, run.status, run.conclusion,
                                   len([job for job in run.jobs if job.attempt == run.attempt]))
                  for run in runs]
        if sha in r.runs:
            registered = {id(run.workflow) for run in runs}
            suites += [self._suite_json(_stable_id(f"{sha}:{late.path}"), sha, r.runs[sha].branch, "queued",
                                        None, 0) for late in r.late_workflows
                       if late.suite_early and id(late) not in registered]
            suites += [self._suite_json(_stable_id(f"{sha}:{app}"), sha, r.runs[sha].branch, "queued",
                                        None, 0, app) for app in r.stale_suite_apps]
        return self._paginate(req, suites, "check_suites")

    def _suite_json(self, suite_id: int, sha: str, branch: str, status: str, conclusion: str | None,
                    check_runs: int, app: str = "github-actions") -> dict:
        return {"id": suite_id, "node_id": f"CS_{suite_id}", "head_branch": branch, "head_sha": sha,
                "status": status, "conclusion": conclusion, "latest_check_runs_count": check_runs,
                "app": {"id": _stable_id(app), "slug": app, "name": app.replace("-", " ").title()},
                "url": f"{self.url}/check-suites/{suite_id}", "before": None, "after": sha,
                "created_at": _iso(_EPOCH), "updated_at": _iso(_EPOCH)}

    # ------------------------------------------------------------------------------- actions: jobs
    def _job_or_404(self, owner: str, repo: str, job_id: str) -> tuple[_Run, _Job]:
        found = self._jobs.get(int(job_id))
        if found is None or found[0].repo is not self._repo_or_404(owner, repo):
            raise _not_found()
        return found

    def _list_jobs(self, req: _Req, owner: str, repo: str, run_id: str) -> _Resp:
        run = self._run_or_404(owner, repo, run_id)
        latest = req.query.get("filter", "latest") != "all"
        jobs = [self._job_json(run, job) for job in run.jobs if not latest or job.attempt == run.attempt]
        return self._paginate(req, jobs, "jobs")

    def _get_job(self, req: _Req, owner: str, repo: str, job_id: str) -> _Resp:
        return _Resp(200, self._job_json(*self._job_or_404(owner, repo, job_id)))

    def _job_json(self, run: _Run, job: _Job) -> dict:
        r, done = run.repo, run.job_done(job)
        status = "completed" if done else ("in_progress" if run.status == "in_progress" else "queued")
        steps = []
        for number, (name, conclusion) in enumerate(job.spec.step_list(), start=1):
            if status == "queued":
                break
            step_status = "completed" if done else ("in_progress" if number == 1 else "queued")
            steps.append({"name": name, "status": step_status, "conclusion": conclusion if done else None,
                          "number": number, "started_at": job.started_at if step_status != "queued" else None,
                          "completed_at": job.completed_at if done else None})
        api = f"{self.url}/repos/{r.full_name}/actions"
        return {
            "id": job.id, "run_id": run.id, "run_url": f"{api}/runs/{run.id}", "run_attempt": job.attempt,
            "node_id": f"CR_{job.id}", "head_sha": run.sha, "head_branch": run.branch,
            "url": f"{api}/jobs/{job.id}",
            "html_url": f"{HTML_BASE}/{r.full_name}/actions/runs/{run.id}/job/{job.id}", "status": status,
            "conclusion": job.spec.conclusion if done else None, "created_at": job.started_at,
            "started_at": job.started_at, "completed_at": job.completed_at if done else None,
            "name": job.spec.name, "steps": steps,
            "check_run_url": f"{self.url}/repos/{r.full_name}/check-runs/{job.id}",
            "labels": ["ubuntu-latest"], "runner_id": 1, "runner_name": "GitHub Actions 1",
            "runner_group_id": 1, "runner_group_name": "GitHub Actions", "workflow_name": "CI",
        }

    def _get_job_logs(self, req: _Req, owner: str, repo: str, job_id: str) -> _Resp:
        run, job = self._job_or_404(owner, repo, job_id)
        if not run.job_done(job):
            raise _not_found()
        token = secrets.token_urlsafe(16)
        self._download_tokens[token] = job.id
        location = f"{self.url}/_downloads/job-logs/{job.id}?{urlencode({'sig': token, 'se': '2026-11-24'})}"
        return _Resp(302, None, {"Location": location})

    def _serve_download(self, req: _Req) -> _Resp:
        """Pre-signed-style download: no Authorization needed, the ``sig`` query parameter is checked."""
        match = re.fullmatch(r"/_downloads/job-logs/(\d+)", req.path)
        token = req.query.get("sig", "")
        if not match or self._download_tokens.get(token) != int(match.group(1)):
            denied = "AuthenticationFailed: Server failed to authenticate the request."
            return _Resp(403, denied, counted=False)
        run, job = self._jobs[int(match.group(1))]
        return _Resp(200, _render_log(job), counted=False)

    # --------------------------------------------------------------------------------------- pulls
    def _pull_or_404(self, owner: str, repo: str, number: str) -> tuple[FakeRepo, _Pull]:
        r = self._repo_or_404(owner, repo)
        pull = r.pulls.get(int(number))
        if pull is None:
            raise _not_found()
        return r, pull

    def _refresh_pull(self, repo: FakeRepo, pull: _Pull) -> bool | None:
        """Track the branch tips of an open PR; return whether it can be merged (fast-forward only)."""
        if pull.state != "open":
            return None
        if not repo.bare:
            return True
        pull.head_sha = repo.bare.branch_sha(pull.head) or pull.head_sha
        pull.base_sha = repo.bare.branch_sha(pull.base)
        return bool(pull.base_sha) and repo.bare.is_ancestor(pull.base_sha, pull.head_sha)

    def _pull_json(self, repo: FakeRepo, pull: _Pull) -> dict:
        mergeable = self._refresh_pull(repo, pull)
        api = f"{self.url}/repos/{repo.full_name}/pulls/{pull.number}"
        repo_json = self._repo_json(repo)

        def part(ref: str, sha: str | None) -> dict:
            return {"ref": ref, "sha": sha, "label": f"{repo.owner}:{ref}", "repo": repo_json}
        return {
            "id": pull.id, "node_id": f"PR_{pull.id}", "number": pull.number, "url": api,
            "html_url": f"{HTML_BASE}/{repo.full_name}/pull/{pull.number}", "state": pull.state,
            "title": pull.title, "body": pull.body, "draft": False, "user": self._user_json(),
            "head": part(pull.head, pull.head_sha), "base": part(pull.base, pull.base_sha),
            "mergeable": mergeable,
            "mergeable_state": {True: "clean", False: "dirty"}.get(mergeable, "unknown"),
            "merged": pull.merged, "merged_at": pull.merged_at, "merge_commit_sha": pull.merge_sha,
            "created_at": pull.created_at, "updated_at": pull.merged_at or pull.created_at,
        }

    def _create_pull(self, req: _Req, owner: str, repo: str) -> _Resp:
        r = self._repo_or_404(owner, repo)
        data = req.json if isinstance(req.json, dict) else {}
        head_owner, _, head = str(data.get("head") or "").rpartition(":")
        base = str(data.get("base") or "")
        for name, value in (("title", data.get("title")), ("head", head), ("base", base)):
            if not value:
                raise _validation("PullRequest", name, "missing_field")
        if head_owner and head_owner.lower() != r.owner.lower():
            raise _validation("PullRequest", "head")  # forks are not modelled
        head_sha, base_sha = hashlib.sha1(f"{r.full_name}:{head}".encode()).hexdigest(), None
        if r.bare:
            base_sha, found = r.bare.branch_sha(base), r.bare.branch_sha(head)
            if not base_sha:
                raise _validation("PullRequest", "base")
            if not found:
                raise _validation("PullRequest", "head")
            head_sha = found
            if r.bare.is_ancestor(head_sha, base_sha):
                raise _pull_error(f"No commits between {base} and {head}")
        if any(p.state == "open" and (p.head, p.base) == (head, base) for p in r.pulls.values()):
            raise _pull_error(f"A pull request already exists for {r.owner}:{head}.")
        pull = _Pull(len(r.pulls) + 1, next(self._ids), str(data["title"]), data.get("body"), head, base,
                     head_sha, self._now(), base_sha=base_sha)
        r.pulls[pull.number] = pull
        return _Resp(201, self._pull_json(r, pull))

    def _update_pull(self, req: _Req, owner: str, repo: str, number: str) -> _Resp:
        """PATCH a PR's title, body or state (open/closed), like GitHub's "Update a pull request"."""
        r, pull = self._pull_or_404(owner, repo, number)
        data = req.json if isinstance(req.json, dict) else {}
        if "title" in data:
            pull.title = str(data["title"])
        if "body" in data:
            pull.body = data["body"]
        if data.get("state") in ("open", "closed") and not pull.merged:
            pull.state = data["state"]
        return _Resp(200, self._pull_json(r, pull))

    def _list_pulls(self, req: _Req, owner: str, repo: str) -> _Resp:
        r = self._repo_or_404(owner, repo)
        state, base = req.query.get("state", "open"), req.query.get("base")
        head_owner, _, head = req.query.get("head", "").rpartition(":")
        pulls = [p for p in sorted(r.pulls.values(), key=lambda p: -p.number)
                 if state in ("all", p.state) and base in (None, p.base)
                 and (not head or (p.head == head and head_owner.lower() in ("", r.owner.lower())))]
        resp = self._paginate(req, [self._pull_json(r, p) for p in pulls], "items")
        resp.body = resp.body["items"]  # the pulls listing is a bare JSON array
        return resp

    def _get_pull(self, req: _Req, owner: str, repo: str, number: str) -> _Resp:
        return _Resp(200, self._pull_json(*self._pull_or_404(owner, repo, number)))

    def _merge_pull(self, req: _Req, owner: str, repo: str, number: str) -> _Resp:
        """Fast-forward the base branch to the head (405 when not a fast-forward or not open)."""
        r, pull = self._pull_or_404(owner, repo, number)
        data = req.json if isinstance(req.json, dict) else {}
        if not self._refresh_pull(r, pull):
            raise ApiError(405, "Pull Request is not mergeable")
        if data.get("sha") and data["sha"] != pull.head_sha:
            raise ApiError(409, "Head branch was modified. Review and try the merge again.")
        if r.bare and not r.bare.update_ref(pull.base, pull.head_sha, pull.base_sha):
            raise ApiError(409, "Base branch was modified. Review and try the merge again.")
        pull.state, pull.merged, pull.merge_sha, pull.merged_at = "closed", True, pull.head_sha, self._now()
        return _Resp(200, {"sha": pull.head_sha, "merged": True,
                           "message": "Pull Request successfully merged"})


# ------------------------------------------------------------------------------------------- helpers
def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _stable_id(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:7], 16)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _render_log(job: _Job) -> str:
    """A job log the way GitHub serves it: BOM, ``<timestamp>Z <text>`` lines, groups, ANSI colours."""
    start = datetime.strptime(job.started_at, "%Y-%m-%dT%H:%M:%SZ")
    lines: list[str] = []

    def emit(text: str) -> None:
        moment = start + timedelta(milliseconds=250 * len(lines))
        lines.append(f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}{len(lines) % 10}Z {text}")

    steps = job.spec.step_list()
    failed = [i for i, (_, conclusion) in enumerate(steps) if conclusion == "failure"]
    log_step = failed[0] if failed else len(steps) - 1
    emit("Current runner version: '2.321.0'")
    for index, (name, conclusion) in enumerate(steps):
        emit(f"##[group]Run {name}")
        emit(f"\x1b[36;1m{name}\x1b[0m")
        emit("##[endgroup]")
        if index == log_step:
            for text in job.spec.log.splitlines():
                emit(text)
        if conclusion == "failure":
            emit("##[error]\x1b[31mProcess completed with exit code 1.\x1b[0m")
    emit("Cleaning up orphan processes")
    return "\ufeff" + "\n".join(lines) + "\n"
