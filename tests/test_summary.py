"""The run summary table and the DAG run note."""

from __future__ import annotations

from clone.run_note import NOTE_MAX_CHARS, fit_note
from clone.summary import render_table, repo_rows


def test_rows_from_states_and_results():
    repos = [{"name": "a"}, {"name": "b"}, {"name": "c"}]
    states = {"repo.agent_pass_0": "success", "repo.push_0": "success", "repo.ci_wait_0": "success",
              "repo.autofix_0": "success", "repo.agent_pass_1": "success", "repo.push_1": "skipped",
              "repo.agent_pass_2": "success", "repo.push_2": "success", "repo.ci_wait_2": "success",
              "repo.autofix_2": "failed"}
    results = [
        {"changed": True, "pushed": True, "verification": "passed", "tokens": 1234, "agent": {"duration": 61.2},
         "ci": {"status": "success", "runs": [{"html_url": "https://x/runs/1"}]}, "autofix_attempts": 1},
        {"changed": False, "verification": "skipped", "tokens": 10, "agent": {"duration": 3}},
        {"changed": True, "pushed": True, "verification": "passed", "tokens": 5, "agent": {"duration": 9},
         "ci": {"status": "failure", "runs": [{"html_url": "https://x/runs/2"}]}},
    ]
    table = render_table(repo_rows(repos, states, results))
    assert "| a | changed | passed | 2 | success | 1 | 1234 | 61s | https://x/runs/1 | ok |" in table
    assert "| b | no change | skipped | 0 | - | - | 10 | 3s | - | ok |" in table
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

    from clone.run_note import set_run_note

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
        (tmp_path / "simple_auth_manager_passwords.json.generated").write_text('{"admin": "pw"}')
        monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
        monkeypatch.setenv("AIRFLOW__API__BASE_URL", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setattr("clone.run_note._connection_credentials", lambda: None)
        assert set_run_note("clone_fleet", "manual__2026-11-24T10:00:00+00:00", "| a | ok |") is None
        assert seen == [("/api/v2/dags/clone_fleet/dagRuns/manual__2026-11-24T10%3A00%3A00%2B00%3A00",
                         "Bearer jwt", {"note": "| a | ok |"})]
        (tmp_path / "simple_auth_manager_passwords.json.generated").write_text('{"admin": "wrong"}')
        assert "answered 401" in set_run_note("clone_fleet", "r", "x")
        (tmp_path / "simple_auth_manager_passwords.json.generated").unlink()
        assert "no API credentials" in set_run_note("clone_fleet", "r", "x")
    finally:
        server.shutdown()


def test_red_ci_left_unfixed_fails_the_row():
    states = {"repo.agent_pass_0": "success", "repo.push_0": "success", "repo.ci_wait_0": "success",
              "repo.autofix_0": "skipped"}
    rows = repo_rows([{"name": "a"}], states, [{"changed": True, "pushed": True, "ci": {"status": "failure"}}])
    assert rows[0]["failed"]
