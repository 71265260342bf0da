"""The subprocess runner: streaming, timeouts that kill the whole process group, stop requests."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from clone.util import runner
from clone.errors import CommandError

ENV = {"PATH": os.environ["PATH"]}


def test_output_streams_line_by_line_while_running(tmp_path):
    seen: list[tuple[float, str]] = []
    script = "import time\nfor i in range(3):\n    print(f'line {i}', flush=True)\n    time.sleep(0.3)\n"
    started = time.monotonic()
    result = runner.run([sys.executable, "-c", script], cwd=tmp_path, env=ENV, timeout=30,
                        on_line=lambda stream, line: seen.append((time.monotonic() - started, line)))
    assert result.ok and result.stdout.splitlines() == ["line 0", "line 1", "line 2"]
    assert [line for _, line in seen] == ["line 0", "line 1", "line 2"]
    # The first line arrived long before the process ended: it was streamed, not collected at exit.
    assert seen[0][0] < result.duration - 0.4


def test_timeout_kills_the_whole_process_group(tmp_path):
    pid_file = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(120)\n"
    )
    with pytest.raises(CommandError) as err:
        runner.run([sys.executable, "-c", script], cwd=tmp_path, env=ENV, timeout=1.5)
    assert err.value.timed_out
    assert "timed out" in str(err.value)
    child = int(pid_file.read_text())
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"grandchild {child} survived the timeout")


def test_nonzero_exit_raises_with_command_code_and_output(tmp_path):
    with pytest.raises(CommandError) as err:
        runner.run([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], cwd=tmp_path, env=ENV,
                   timeout=30)
    assert err.value.returncode == 3
    assert "exited with code 3" in str(err.value) and "boom" in str(err.value)


def test_check_false_returns_result(tmp_path):
    result = runner.run([sys.executable, "-c", "import sys; sys.exit(2)"], cwd=tmp_path, env=ENV, timeout=30,
                        check=False)
    assert result.returncode == 2 and not result.ok


def test_stdin_and_exact_environment(tmp_path):
    result = runner.run([sys.executable, "-c", "import os, sys; print(sys.stdin.read().upper(), sorted(os.environ))"],
                        cwd=tmp_path, env={"PATH": ENV["PATH"], "ONLY": "1"}, timeout=30, stdin="hello")
    assert result.stdout.startswith("HELLO")
    assert "'ONLY'" in result.stdout and "HOME" not in result.stdout


def test_handler_can_stop_the_process(tmp_path):
    script = "import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.05)\n"
    count = 0

    def on_line(stream, line):
        nonlocal count
        count += 1
        return count >= 3

    result = runner.run([sys.executable, "-c", script], cwd=tmp_path, env=ENV, timeout=30, on_line=on_line,
                        check=False)
    assert result.stopped and not result.ok
    assert result.duration < 10


def test_missing_program_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="cannot start 'no-such-program-xyz'"):
        runner.run(["no-such-program-xyz"], cwd=tmp_path, env=ENV, timeout=5)


def test_a_killed_caller_takes_its_command_with_it(tmp_path):
    """The task process dying, even by SIGKILL, must not leave the agent running on its own."""
    import signal
    import subprocess

    pid_file = tmp_path / "child.pid"
    sleeper = tmp_path / "sleeper.py"
    sleeper.write_text(f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n")
    caller = tmp_path / "caller.py"
    caller.write_text(
        "import os, sys\n"
        f"sys.path.insert(0, {str(Path(runner.__file__).parents[2])!r})\n"
        "from clone.util import runner\n"
        f"runner.run([sys.executable, {str(sleeper)!r}], cwd={str(tmp_path)!r}, "
        "env={'PATH': os.environ['PATH']}, timeout=300)\n")
    proc = subprocess.Popen([sys.executable, str(caller)])
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.05)
    child = int(pid_file.read_text())
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail(f"the command {child} outlived its killed caller")


def test_a_daemon_left_holding_stdout_does_not_turn_success_into_a_timeout(tmp_path):
    pid_file = tmp_path / "daemon.pid"
    script = f"sleep 60 & echo $! > {pid_file}; echo leader done"
    started = time.monotonic()
    result = runner.run(["bash", "-c", script], cwd=tmp_path, env=ENV, timeout=30)
    took = time.monotonic() - started
    assert result.ok and not result.timed_out and result.stdout == "leader done"
    assert took < runner._DRAIN_SECONDS + 3, took  # before the fix: the whole 30 s timeout, then TIMEOUT
    daemon = int(pid_file.read_text())
    for _ in range(50):
        try:
            os.kill(daemon, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the daemon {daemon} left in the group survived")


def test_a_handler_error_stops_the_command_at_once_and_is_named(tmp_path):
    calls: list[str] = []

    def handler(stream, line):
        calls.append(line)
        if line == "bad":
            raise TypeError("string indices must be integers")

    # Enough output to fill the pipe many times over: if draining stopped, the child would block.
    script = "print('good'); print('bad', flush=True)\nfor i in range(100000): print('x' * 100)\nimport time; time.sleep(60)"
    started = time.monotonic()
    with pytest.raises(CommandError) as err:
        runner.run([sys.executable, "-c", script], cwd=tmp_path, env=ENV, timeout=60, on_line=handler)
    assert time.monotonic() - started < 15  # before the fix: the 60 s timeout, reported as "timed out"
    message = str(err.value)
    assert "output handler failed: TypeError: string indices must be integers" in message, message
    assert "stdout line 2" in message and not err.value.timed_out
    assert calls == ["good", "bad"]  # a broken handler is not called again

    result = runner.run([sys.executable, "-c", "print('bad')"], cwd=tmp_path, env=ENV, timeout=30,
                        on_line=handler, check=False)
    assert not result.ok and result.handler_error.startswith("TypeError")


def test_invalid_utf8_and_huge_lines_are_read_without_holding_them_whole(tmp_path):
    script = ("import sys\nsys.stdout.buffer.write(b'\\xff\\xfe bad bytes\\n')\n"
              f"sys.stdout.buffer.write(b'y' * ({runner.MAX_LINE_BYTES} * 3 + 5) + b'\\n')\n"
              "sys.stdout.buffer.write(b'after\\n')\n")
    seen: list[str] = []
    result = runner.run([sys.executable, "-c", script], cwd=tmp_path, env=ENV, timeout=30,
                        on_line=lambda stream, line: seen.append(line))
    assert result.ok
    assert seen[0] == "\ufffd\ufffd bad bytes"
    assert len(seen[1]) == runner.MAX_LINE_BYTES and seen[2] == "after" and len(seen) == 3
