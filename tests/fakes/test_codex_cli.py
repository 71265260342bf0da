"""End-to-end checks of the fakes: the real ``codex exec`` 0.169.0 against ``FakeModelServer``.

These install codex from the npm registry on first use (about 300 MB, cached under ``.cache/test-tools`` or
``$CLONE_TEST_CACHE``) and run it for real: a sandboxed shell command, JSONL events, ``-o`` last message.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.codex_cli import install_codex, write_codex_home
from tests.fakes.model_server import FakeModelServer, HttpError, Message, ResponseFailed, ShellCall, Usage

pytestmark = pytest.mark.slow

CODEX_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def codex_bin() -> Path:
    return install_codex()


@dataclass
class CodexRun:
    returncode: int
    events: list[dict]
    stdout: str
    stderr: str
    elapsed: float
    last_message_file: Path

    def of_type(self, kind: str) -> list[dict]:
        return [e for e in self.events if e.get("type") == kind]

    def items(self, item_type: str) -> list[dict]:
        return [e["item"] for e in self.of_type("item.completed") if e["item"].get("type") == item_type]


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git = ["git", "-C", str(path), "-c", "user.name=Clone Test", "-c", "user.email=clone@example.invalid"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    (path / "README.md").write_text("# demo\n")
    subprocess.run([*git, "add", "README.md"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "initial"], check=True)
    return path


def run_codex(
    codex: Path, server: FakeModelServer, tmp_path: Path, prompt: str, **config: object
) -> CodexRun:
    # Not under /tmp: with a system bwrap, codex 0.169.0 refuses to create its sandbox helper aliases under
    # a temporary dir, and its shell tool then never runs (seen once bubblewrap was installed).
    home = Path(__file__).resolve().parents[2] / ".cache" / "codex-test-homes" / tmp_path.name
    shutil.rmtree(home, ignore_errors=True)
    codex_home = home / ".codex"
    write_codex_home(codex_home, server.base_url, **config)
    repo = tmp_path / "repo"
    if not repo.exists():
        make_repo(repo)
    last = tmp_path / "last_message.txt"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "CODEX_HOME": str(codex_home),
        "CLONE_FAKE_MODEL_KEY": "x",
    }
    cmd = [str(codex), "exec", "--json", "-o", str(last), "--skip-git-repo-check", "-s", "workspace-write",
           "-C", str(repo), "-m", "fake-model", prompt]
    started = time.monotonic()
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                          timeout=CODEX_TIMEOUT_S)
    elapsed = time.monotonic() - started
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip().startswith("{")]
    return CodexRun(proc.returncode, events, proc.stdout, proc.stderr, elapsed, last)


def test_codex_exec_runs_scripted_shell_command(codex_bin: Path, tmp_path: Path) -> None:
    usage = Usage(input_tokens=120, output_tokens=30, cached_tokens=7, reasoning_tokens=5)
    script = [
        ShellCall("echo hi > hello.txt && cat hello.txt"),
        Message("Done: wrote hello.txt", usage=Usage(input_tokens=200, output_tokens=12, cached_tokens=100)),
    ]
    with FakeModelServer(script=script, usage=usage) as server:
        run = run_codex(codex_bin, server, tmp_path, "Write hi to hello.txt")

    diag = f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert run.returncode == 0, diag
    assert (tmp_path / "repo" / "hello.txt").is_file(), diag
    assert (tmp_path / "repo" / "hello.txt").read_text() == "hi\n"

    # The fake's assumptions about codex hold: one request per step, exec_command advertised with `cmd`.
    assert len(server.requests) == 2
    tools = {t.get("name"): t for t in server.advertised_tools()}
    assert "cmd" in tools["exec_command"]["parameters"]["properties"]
    assert server.requests[0]["stream"] is True
    [out] = server.tool_outputs()
    assert out.exit_code == 0 and out.text == "hi\n", out

    # JSONL: the command ran, the message arrived, usage is the sum over the turn's responses.
    [cmd_item] = run.items("command_execution")
    assert cmd_item["exit_code"] == 0 and "echo hi > hello.txt" in cmd_item["command"]
    assert [m["text"] for m in run.items("agent_message")] == ["Done: wrote hello.txt"]
    assert run.items("error") == [], diag  # the fake model catalog avoids the "metadata not found" item
    assert not run.of_type("turn.failed") and not run.of_type("error"), diag
    [completed] = run.of_type("turn.completed")
    reported = server.reported_usage
    assert len(reported) == 2
    assert completed["usage"]["input_tokens"] == sum(u.input_tokens for u in reported) == 320
    assert completed["usage"]["cached_input_tokens"] == sum(u.cached_tokens for u in reported) == 107
    assert completed["usage"]["output_tokens"] == sum(u.output_tokens for u in reported) == 42
    assert completed["usage"]["reasoning_output_tokens"] == sum(u.reasoning_tokens for u in reported) == 5

    assert run.last_message_file.read_text().strip() == "Done: wrote hello.txt"


@pytest.mark.parametrize(
    "failure",
    [HttpError(500, "model backend exploded"), ResponseFailed("model backend exploded", code="server_error")],
    ids=["http-500", "response-failed"],
)
def test_codex_exec_reports_model_errors(codex_bin: Path, tmp_path: Path, failure: object) -> None:
    with FakeModelServer(script=[], when_exhausted=failure) as server:
        run = run_codex(codex_bin, server, tmp_path, "Do something")

    diag = f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    # codex 0.169.0 exits 1 after turn.failed (with retries at 0 it takes well under a second here).
    assert run.returncode == 1, diag
    assert run.of_type("error"), diag
    [failed] = run.of_type("turn.failed")
    assert failed["error"]["message"], diag
    assert not run.of_type("turn.completed")
    # request_max_retries = stream_max_retries = 0 in write_codex_home: exactly one request, no back-off.
    assert len(server.requests) == 1
    assert run.elapsed < 30, f"took {run.elapsed:.1f} s"
    if isinstance(failure, ResponseFailed):
        assert "model backend exploded" in failed["error"]["message"]
    # No final message: codex 0.169.0 still creates the -o file, empty.
    assert run.last_message_file.read_text() == ""


def test_codex_exec_transient_errors_are_error_events_then_success(codex_bin: Path, tmp_path: Path) -> None:
    """An `error` event alone is no failure: codex says `Reconnecting... n/m`, retries, recovers."""
    script = [HttpError(500), ResponseFailed("flaky"), Message("recovered")]
    with FakeModelServer(script=script, usage=Usage(input_tokens=50, output_tokens=5)) as server:
        run = run_codex(codex_bin, server, tmp_path, "Do something", stream_max_retries=2)

    diag = f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert run.returncode == 0, diag
    errors = [e["message"] for e in run.of_type("error")]
    assert len(errors) == 2 and all(m.startswith("Reconnecting... ") for m in errors), errors
    assert not run.of_type("turn.failed")
    [completed] = run.of_type("turn.completed")
    assert completed["usage"]["input_tokens"] == 50  # failed attempts report no usage
    assert len(server.requests) == 3
    assert run.last_message_file.read_text().strip() == "recovered"
