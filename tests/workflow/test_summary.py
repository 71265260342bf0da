"""The run summary table and the DAG run note."""

from __future__ import annotations

import pytest

from clone.workflow.run_note import NOTE_MAX_CHARS, _skip_message, fit_note
from clone.work.chain import ChainResult
from clone.workflow.summary import known_reason, render_table, repo_rows, skip_kind, warnings


def chain(**fields):
    """A chain result with placeholder values for what a row does not show."""
    base = {"repo": "r", "workdir": "/w", "branch": "main", "base_sha": "a" * 40, "head_sha": "b" * 40,
            "has_remote": True, "github": "o/r", "push_mode": "direct", "run_id": "run", "changed": True,
            "entry": {}}
    return ChainResult.from_json({**base, **fields})


def test_rows_from_states_and_results():
    repos = [{"name": "a"}, {"name": "b"}, {"name": "c"}]
    states = {"repo.agent_pass_0": "success", "repo.push_0": "success", "repo.ci_wait_0": "success",
              "repo.autofix_0": "success", "repo.agent_pass_1": "success", "repo.push_1": "skipped",
              "repo.agent_pass_2": "success", "repo.push_2": "success", "repo.ci_wait_2": "success",
              "repo.autofix_2": "failed"}
    results = [
        chain(changed=True, pushed=True, verification="passed", tokens=1234, agent={"duration": 61.2},
              ci={"status": "success", "runs": [{"html_url": "https://x/runs/1"}]}, autofix_attempts=1),
        chain(changed=False, verification="skipped", tokens=10, agent={"duration": 3}),
        chain(changed=True, pushed=True, verification="passed", tokens=5, agent={"duration": 9},
              ci={"status": "failure", "runs": [{"html_url": "https://x/runs/2"}]}),
    ]
    table = render_table(repo_rows(repos, states, results,
                                   skip_reasons={1: "b: the pass made no change; nothing to push"}))
    assert "| a | changed | passed | 2 | success | 1 | 1234 | 61s | https://x/runs/1 | ok |" in table
    assert ("| b | no change | skipped | 0 | - | - | 10 | 3s | - | push skipped: the pass made no change; "
            "nothing to push |") in table
    assert "| c | changed | passed | 1 | failure | failed | 5 | 9s | https://x/runs/2 | FAILED |" in table
    assert table.endswith("3 repo(s), 1 failed: c")


def test_note_fits_airflows_limit():
    table = "\n".join(f"| repo-{i} | changed | ok |" for i in range(500))
    note = fit_note(table)
    assert len(note) <= NOTE_MAX_CHARS and note.startswith("| repo-0 |")
    assert note.endswith("(the full table is in the summary task's log)")
    assert fit_note("short") == "short"


def test_note_is_set_through_the_public_api(tmp_path, monkeypatch):
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from clone.workflow.run_note import set_run_note

    seen = []

    class Api(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            ok = self.path == "/auth/token" and body == {"username": "admin", "password": "pw"}
            self._reply(201 if ok else 401, {"access_token": "jwt"} if ok else {"detail": "no"})

        def do_PATCH(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, self.headers["Authorization"], body))
            self._reply(200, {})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # A password file is never read, even where it would be right: only the documented connection is.
        (tmp_path / "simple_auth_manager_passwords.json.generated").write_text('{"admin": "pw"}')
        monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
        monkeypatch.delenv("AIRFLOW_CONN_CLONE_AIRFLOW_API", raising=False)
        assert "no API credentials" in set_run_note("clone_fleet", "r", "x")
        assert seen == []

        def connection(password: str) -> None:
            monkeypatch.setenv("AIRFLOW_CONN_CLONE_AIRFLOW_API", json.dumps({
                "conn_type": "http", "host": f"http://127.0.0.1:{server.server_port}", "login": "admin",
                "password": password}))

        connection("pw")
        assert set_run_note("clone_fleet", "manual__2026-11-24T10:00:00+00:00", "| a | ok |") is None
        assert seen == [("/api/v2/dags/clone_fleet/dagRuns/manual__2026-11-24T10%3A00%3A00%2B00%3A00",
                         "Bearer jwt", {"note": "| a | ok |"})]
        connection("wrong")
        assert "answered 401" in set_run_note("clone_fleet", "r", "x")
    finally:
        server.shutdown()


def test_red_ci_left_unfixed_fails_the_row():
    states = {"repo.agent_pass_0": "success", "repo.push_0": "success", "repo.ci_wait_0": "success",
              "repo.autofix_0": "skipped"}
    rows = repo_rows([{"name": "a"}], states, [chain(changed=True, pushed=True, ci={"status": "failure"})])
    assert rows[0]["failed"]


# The messages the tasks raise, as their skips log them (see dag_factory, controls, passes, stall).
KILL = ("a: the kill switch is on (Airflow Variable clone_paused=true); no new agent work starts. "
        "Set it to false to resume.")
LEASE = ("b: another pass is working on this repo (run manual__2026 since 2026-12-03 10:00 UTC); skipped so "
         "that two agents never share a repo")
STALL = ("c: stalled: the last 3 passes changed nothing (CLONE_STALL_PASSES=3) and the branch is still at "
         "0123456789ab; it resumes on new commits, or clear it with `include/scripts/stall.py clear <repo>`")
DEADLINE = "d: the MAX_HOURS deadline (2026-12-03 10:00 UTC) has passed; no new pass starts"


@pytest.mark.parametrize("message, kind", [
    (KILL, "kill switch"), (LEASE, "lease"), (STALL, "stall"), (DEADLINE, "deadline"),
    ("e: the run's token budget is spent (10 >= CLONE_MAX_TOKENS_PER_RUN=5); no new pass starts", "budget"),
    ("e: the pass made no change; nothing to push", "no change"),
    ("e: dry run; the commit abc stays in the workspace /w", "dry run"), (None, "unknown"), ("odd", "unknown"),
])
def test_skip_kinds(message, kind):
    assert skip_kind(message) == kind


def skipped_rows(messages):
    repos = [{"name": m.split(":", 1)[0]} for m in messages]
    states = {f"repo.{step}_{i}": "skipped" for i in range(len(repos)) for step in ("agent_pass", "push")}
    return repo_rows(repos, states, [None] * len(repos), skip_reasons=dict(enumerate(messages)))


def test_the_row_says_why_it_skipped():
    table = render_table(skipped_rows([KILL, LEASE]))
    assert ("| a | skipped | - | 0 | - | - | 0 | - | - | skipped: the kill switch is on (Airflow Variable "
            "clone_paused=true); no new agent work starts. Set it to false to resume. |") in table
    assert "| b | skipped | - | 0 | - | - | 0 | - | - | skipped: another pass is working on this repo" in table
    assert table.endswith("2 repo(s), 0 failed, 2 skipped")
    green = repo_rows([{"name": "g"}], {"repo.agent_pass_0": "success", "repo.push_0": "success",
                                        "repo.ci_wait_0": "success", "repo.autofix_0": "skipped"},
                      [chain(changed=True, pushed=True, ci={"status": "success"})],
                      skip_reasons={0: "g: CI success; nothing to fix"})
    assert render_table(green).splitlines()[2].endswith("| ok |")  # a green CI's autofix skip is no news
    unknown = repo_rows([{"name": "x"}], {"repo.agent_pass_0": "skipped"})
    assert "skipped: reason not known (see the task's log)" in render_table(unknown)


def test_a_run_of_only_unchosen_skips_says_so_first():
    rows = skipped_rows([LEASE, STALL, DEADLINE])
    notes = warnings(rows)
    assert notes == ["WARNING: every repo was skipped (deadline, lease, stall); this run did no work"]
    assert render_table(rows, notes).splitlines()[0] == notes[0]
    # A skip somebody chose (the kill switch, a dry run, no change) is not a warning.
    assert warnings(skipped_rows([LEASE, KILL])) == []
    assert warnings(skipped_rows([KILL])) == []
    assert warnings([]) == []


def test_a_repo_skipped_again_is_a_warning():
    previous = skipped_rows([LEASE, STALL])
    now = skipped_rows([LEASE.replace("manual__2026", "manual__2027"), KILL, STALL])
    assert warnings(now, previous, "scheduled__2026-12-03") == [
        "WARNING: b skipped again (lease; also in run scheduled__2026-12-03: lease)",
        "WARNING: c skipped again (stall; also in run scheduled__2026-12-03: stall)",
    ]
    assert warnings(skipped_rows([KILL]), skipped_rows([KILL])) == []


def test_known_reasons_without_the_logs():
    assert known_reason("push", chain(changed=False), dry_run=False, paused=False).startswith("the pass made no")
    assert known_reason("push", chain(changed=True), dry_run=True, paused=False).startswith("dry run")
    assert known_reason("agent_pass", None, dry_run=False, paused=True).startswith("the kill switch is on")
    assert known_reason("agent_pass", None, dry_run=False, paused=False) is None


def test_skip_message_from_a_structured_log():
    content = [{"event": "::group::Post Execute"}, {"event": "Skipping task.", "reason": LEASE}, "plain"]
    assert _skip_message(content) == LEASE
    assert _skip_message([{"event": "Skipping task."}]) is None and _skip_message("text") is None


def test_ci_wait_and_land_reasons_are_said_once():
    assert known_reason("ci_wait", chain(github=None), dry_run=False, paused=False) == "no GitHub mapping"
    assert known_reason("land", chain(), dry_run=False, paused=False) == "direct mode: the push was the landing"
    rows = repo_rows([{"name": "r"}], {"repo.agent_pass_0": "success", "repo.push_0": "success",
                                       "repo.ci_wait_0": "skipped", "repo.autofix_0": "skipped",
                                       "repo.land_0": "skipped"},
                     [chain(github=None, pushed=True)], skip_reasons={0: "no GitHub mapping"})
    assert render_table(rows).splitlines()[2].endswith("| ci_wait skipped: no GitHub mapping |")
