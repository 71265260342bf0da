"""Attacks from inside a pass: the scripted agent and one of the repo's checks each try to reach a credential,
the network, Clone's git config or the remote. Every attempt runs for real (bubblewrap, real git, a real bare
remote, a worker with GITHUB_TOKEN in its environment and credentials in HOME and AIRFLOW_HOME) and is recorded.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from clone.checks import verify
from clone.fleet.repos_file import RepoEntry
from clone.util import sandbox
from clone.work.passes import run_pass
from clone.config.settings import load_settings
from tests.conftest import agent_calls, write_plan
from tests.repos import git, make_remote_and_checkout

TOKEN = "ghp_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8"  # the worker's token (built, not a literal)



@pytest.fixture(autouse=True)
def sandbox_works(bubblewrap):
    sandbox.probe.cache_clear()
    assert sandbox.probe() is None, f"the sandbox cannot run here (install bubblewrap; see README): {sandbox.probe()}"


@pytest.fixture
def listener():
    """A TCP port on loopback that answers: reaching it means having the network."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(2)
    server.close()


@pytest.fixture
def worker(clone_env, tmp_path, monkeypatch):
    """The worker's secrets where the README's set-up puts them, and the workspace under AIRFLOW_HOME."""
    home, airflow_home = tmp_path / "home", tmp_path / "airflow"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{TOKEN}\n")
    (home / ".git-credentials").write_text(f"https://x-access-token:{TOKEN}@github.com\n")
    (home / ".gitconfig").write_text("[user]\n\tname = me\n")
    airflow_home.mkdir()
    (airflow_home / "airflow.cfg").write_text(f"[core]\nfernet_key = {TOKEN}\n")
    (airflow_home / "airflow.db").write_text(f"SQLite format 3\0{TOKEN}")
    workspace = airflow_home / "clone-workspace"  # the default: $AIRFLOW_HOME/clone-workspace
    (workspace / "repos" / "other").mkdir(parents=True)
    (workspace / "repos" / "other" / "secret.txt").write_text(TOKEN)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AIRFLOW_HOME", str(airflow_home))
    monkeypatch.setenv("CLONE_WORKSPACE", str(workspace))
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    # /proc/<pid>/environ shows the environment a process was started with: a stand-in for the Airflow
    # worker started with GITHUB_TOKEN exported, as the README's set-up does.
    started = subprocess.Popen(["sleep", "600"], env={**os.environ, "GITHUB_TOKEN": TOKEN})
    yield {"home": home, "airflow_home": airflow_home, "workspace": workspace, "pid": started.pid}
    started.kill()
    started.wait()


def attacks(worker: dict, checkout: Path, bare: Path, port: int, marker: Path) -> dict[str, str]:
    """name -> shell command; each prints what it got (the token, when it worked)."""
    home, airflow_home = worker["home"], worker["airflow_home"]
    return {
        "parent environ": "tr '\\0' '\\n' < /proc/$PPID/environ",
        "worker environ": f"tr '\\0' '\\n' < /proc/{worker['pid']}/environ",
        "every environ": "cat /proc/*/environ | tr '\\0' '\\n' | grep -a ghp_",
        "~/.git-credentials": f"cat {home}/.git-credentials",
        "~/.ssh": f"ls -a {home}/.ssh && cat {home}/.ssh/id_ed25519",
        "airflow.cfg": f"cat {airflow_home}/airflow.cfg",
        "airflow.cfg relative": "cat ../../../airflow.cfg",
        "metadata DB": f"cat {airflow_home}/airflow.db",
        "other workspace": "cat ../other/secret.txt",
        "user checkout": f"cat {checkout}/.env",
        "network": f"{sys.executable} -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 3); "
                   "print('connected')\"",
        # Through the agent's egress proxy (HTTP_PROXY in model mode) to a host:port not on its allowlist.
        "network via the proxy": f"{sys.executable} -c \"import os, socket, urllib.parse as u; "
                                 "p = u.urlsplit(os.environ['HTTP_PROXY']); "
                                 "s = socket.create_connection((p.hostname, p.port), 3); "
                                 f"s.sendall(b'CONNECT 127.0.0.1:{port} HTTP/1.1\\r\\n\\r\\n'); "
                                 "print(s.recv(200).decode())\"",
        "write ~/.gitconfig": f"printf '[filter \"evil\"]\\n\\tclean = touch {marker}; cat\\n' >> {home}/.gitconfig"
                              " && echo written",
        "write .git/info/attributes": "mkdir -p .git/info && echo '* filter=evil' >> .git/info/attributes "
                                      "&& echo written",
        "write .git/config": "git config core.hooksPath /tmp && echo written",
        "git -c ... push": f"git -c credential.helper='!cat {home}/.git-credentials' -c protocol.file.allow=always "
                           f"push {bare} HEAD:refs/heads/stolen && echo pushed",
        "git -c ... push origin": "git -c core.hooksPath=/dev/null push origin HEAD:refs/heads/stolen2 && echo pushed",
    }


def outcome(name: str, record: dict, worker: dict, bare: Path, marker: Path) -> str:
    """'blocked' or what leaked."""
    output = record["output"]
    if TOKEN in output:
        return "LEAKED the token"
    if name == "network" and "connected" in output:
        return "REACHED the network"
    if name == "network via the proxy" and " 200 " in output:
        return "REACHED a host not on the allowlist"
    if name.startswith("write") and "written" in output:
        if name == "write ~/.gitconfig" and "evil" not in (worker["home"] / ".gitconfig").read_text():
            return "blocked (wrote a private HOME that is thrown away)"
        return "WROTE it"
    if "push" in name and ("pushed" in output or "stolen" in git(bare, "branch", "--list")):
        return "PUSHED"
    return "blocked"


def test_agent_and_check_attacks_all_fail_and_the_pass_still_works(clone_env, worker, tmp_path, listener):
    checkout, bare = make_remote_and_checkout(tmp_path, "app", {"app.py": "x = 1\n"})
    (checkout / ".env").write_text(f"GITHUB_TOKEN={TOKEN}\n")  # untracked, in the user's own checkout
    marker = tmp_path / "filter-ran"
    plan = attacks(worker, checkout, bare, listener, marker)
    check_log = clone_env["plan"].parent / "check_attacks.jsonl"
    # The check: a script committed to the repo, run as `verify:` runs it (baseline and after the agent).
    (checkout / "attack_check.py").write_text(
        "import json, subprocess, sys\n"
        f"plan = json.loads({json.dumps(json.dumps(plan))})\n"
        "with open(sys.argv[1], 'a') as log:\n"
        "    for name, cmd in plan.items():\n"
        "        done = subprocess.run(['sh', '-c', cmd], capture_output=True, text=True, timeout=60)\n"
        "        log.write(json.dumps({'attack': name, 'exit': done.returncode,\n"
        "                              'output': done.stdout + done.stderr}) + '\\n')\n")
    git(checkout, "add", "attack_check.py")
    git(checkout, "commit", "-qm", "check")
    git(checkout, "push", "-q", "origin", "main")
    entry = RepoEntry(path=str(checkout), name="app", verify=(f"{sys.executable} attack_check.py {check_log}",))
    write_plan(clone_env["plan"], {"*": {"pass": [
        *({"shell": cmd, "name": name} for name, cmd in plan.items()),
        {"write": ".gitattributes", "text": "* filter=evil\n"},  # Clone's own git add must not run it
        {"write": "app.py", "text": "x = 2\n"}]}})
    result = run_pass(entry, load_settings(), "r1")

    agent = {r["attack"]: outcome(r["attack"], r, worker, bare, marker)
             for r in agent_calls(clone_env["agent_log"]) if "attack" in r}
    check = {}
    for line in check_log.read_text().splitlines():
        record = json.loads(line)
        check[record["attack"]] = outcome(record["attack"], record, worker, bare, marker)
    print("\nATTACKS (agent | check):\n" + "\n".join(f"  {name:28} {agent[name]:52} | {check[name]}"
                                                    for name in plan))
    assert set(agent) == set(check) == set(plan)
    # The agent's network (CLONE_SANDBOX_AGENT_NETWORK=model, the default) is its own loopback and the egress
    # proxy, which refuses the listener: it is not the model API's host:port (a command agent has none).
    assert "403" in next(r["output"] for r in agent_calls(clone_env["agent_log"])
                         if r.get("attack") == "network via the proxy")
    assert all(v.startswith("blocked") for v in [*agent.values(), *check.values()]), (agent, check)
    assert not marker.exists(), "a planted filter ran at Clone's git add"
    # A normal pass still works inside the sandbox: the agent's change is committed, the check ran green.
    assert result["verification"] == "passed", result
    assert git(result["workdir"], "show", "HEAD:app.py") == "x = 2"
    assert (worker["home"] / ".gitconfig").read_text() == "[user]\n\tname = me\n"


def test_checks_network_opt_in_and_agent_network_none(clone_env, tmp_path, listener, monkeypatch):
    work = clone_env["workspace"] / "repos" / "net"
    work.mkdir(parents=True)
    git(work, "init", "-q")
    probe = (sys.executable, "-c", f"import socket; socket.create_connection(('127.0.0.1', {listener}), 3)")
    check = verify.Check("net", probe, "test")
    offline, = verify.run_checks(work, [check], timeout_seconds=60)
    online, = verify.run_checks(work, [check], timeout_seconds=60, network=True)
    assert (offline.ok, online.ok) == (False, True), (offline.output_tail, online.output_tail)
    monkeypatch.setenv("CLONE_SANDBOX_AGENT_NETWORK", "none")
    argv, env = sandbox.wrap(probe, {"PATH": "/usr/bin:/bin"}, purpose="agent", workdir=work,
                             network=sandbox.agent_network())
    assert subprocess.run(argv, env=env, capture_output=True, timeout=60).returncode != 0
