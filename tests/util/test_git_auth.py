"""Scoped push credentials (clone.util.git_auth), on the real path: real pushes through ``git http-backend``
behind Basic auth and through a real sshd, with the push held mid-flight by a pre-receive hook while every
process's argv and environment and every file under HOME, the workspace and TMPDIR is searched for the secret."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clone.errors import ConfigError, GitError
from clone.fleet.repo_entry import validate_entry
from clone.github import app_auth
from clone.github.connection import endpoint_for
from clone.util import git_auth
from clone.util.git import Git, Identity
from clone.work.push import push_branch
from tests.fakes.git_http import GitHttpServer
from tests.fakes.github_api import FakeGitHub
from tests.repos import git
from tests.util.git_auth_support import HeldPush, Sshd, agents, ed25519_openssh, rsa_pem, scan

BOT = Identity("Clone Bot", "bot@example.com")
FIGURES: dict[str, object] = {}


@pytest.fixture
def home(tmp_path, monkeypatch):
    for name in ("home", "tmp", "workspace"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    for knob in ("CLONE_GIT_AUTH", "CLONE_SSH_KNOWN_HOSTS", "CLONE_GIT_CONFIG", "GIT_SSH_COMMAND", "SSH_AUTH_SOCK"):
        monkeypatch.delenv(knob, raising=False)
    app_auth.forget_cache()
    return tmp_path


def _bare(root: Path, name: str = "widget") -> Path:
    seed = root / "seed"
    seed.mkdir()
    git(seed, "init", "--quiet", "-b", "main")
    (seed / "README.md").write_text("# widget\n")
    git(seed, "add", "README.md")
    git(seed, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "--quiet", "-m", "initial")
    bare = root / "remotes" / f"{name}.git"
    git(root, "clone", "--quiet", "--bare", str(seed), str(bare))
    git(bare, "config", "http.receivepack", "true")
    return bare


def _connection(monkeypatch, **fields) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT", json.dumps({"conn_type": "github", **fields}))


def _clone_commit_push(url: str, home: Path, name: str = "ws", entry: str = "widget", deploy_key=None) -> str:
    auth = git_auth.for_remote(url, entry_name=entry, deploy_key=deploy_key)
    ws = Git.clone(url, home / "workspace" / name, BOT, auth)
    ws.run("checkout", "--quiet", "-B", "main", "origin/main")
    (ws.path / "change.txt").write_text(f"{name}\n")
    ws.commit_all(f"bot change {name}")
    return push_branch(ws, "main")


def test_token_push_over_http_backend_leaks_nowhere(home, monkeypatch):
    token = "ghp_" + secrets.token_hex(20)
    bare = _bare(home)
    _connection(monkeypatch, password=token, host="http://127.0.0.1:9")  # the API host: git's host too
    held = HeldPush(bare, home / "marks", [token.encode()], [home / "home", home / "workspace", home / "tmp"])
    # the user's own credential helper (wrong password) must not be asked in auto mode
    (home / "user.gitconfig").write_text('[credential]\n\thelper = "!f() { echo username=u; echo password=wrong; }; f"\n')
    monkeypatch.setenv("CLONE_GIT_CONFIG", str(home / "user.gitconfig"))
    with GitHttpServer(home / "remotes", token) as server:
        url = f"{server.url}/widget.git"
        started = time.monotonic()
        sha = _clone_commit_push(url, home)
        FIGURES["token push s"] = round(time.monotonic() - started, 2)
        held.join()
        assert git(bare, "rev-parse", "main") == sha
        assert held.hits == [], held.hits
        assert held.git_processes >= 1  # the scan ran while the push's git processes were alive
        assert any(not ok for _, _, ok in server.log) and any(ok for _, _, ok in server.log)
        # own: Clone hands git nothing, so the user's (wrong) helper answers and the push is refused
        monkeypatch.setenv("CLONE_GIT_AUTH", "own")
        (bare / "hooks" / "pre-receive").unlink()
        with pytest.raises(GitError):
            _clone_commit_push(url, home, "own")
    FIGURES["token leaks"] = len(held.hits)
    # the scan can fail: a token in a file, an argv and an environment is found in each
    (home / "tmp" / "planted").write_text(token)
    planted = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", token], env={"T": token})
    try:
        deadline = time.monotonic() + 5  # until its interpreter is up: /proc shows a starting one's argv late
        while token.encode() not in Path(f"/proc/{planted.pid}/cmdline").read_bytes() and time.monotonic() < deadline:
            time.sleep(0.05)
        hits, _ = scan([token.encode()], [home / "tmp"], {os.getpid()})
    finally:
        planted.kill()
        planted.wait()
    assert {h.rsplit("/", 1)[1] for h in hits} == {"cmdline", "environ", "planted"}


def test_auto_mode_keeps_the_token_from_other_hosts(home, monkeypatch):
    token = "ghp_" + secrets.token_hex(20)
    _bare(home)
    _connection(monkeypatch, password=token)  # github.com: the loopback git server is another host
    with GitHttpServer(home / "remotes", token) as server:
        with pytest.raises(GitError):
            _clone_commit_push(f"{server.url}/widget.git", home)
        assert server.log and not any(ok for _, _, ok in server.log)
        monkeypatch.setenv("CLONE_GIT_AUTH", "token")  # token: every https/loopback remote gets it
        _clone_commit_push(f"{server.url}/widget.git", home, "forced")


def test_github_app_token_for_pushes_and_api_is_cached(home, monkeypatch):
    private, public = rsa_pem()
    bare = _bare(home)
    with FakeGitHub(token="ghp_" + secrets.token_hex(20)) as fake:  # a token no one is given
        fake.enable_app(4242, public, 77)
        _connection(monkeypatch, host=fake.url, extra={"app_id": 4242, "installation_id": 77,
                                                       "private_key": private})
        held = HeldPush(bare, home / "marks", [private.splitlines()[5].encode()],
                        [home / "home", home / "workspace", home / "tmp"])
        with GitHttpServer(home / "remotes", lambda: fake.app_tokens_issued) as server:
            sha = _clone_commit_push(f"{server.url}/widget.git", home)
            held.join()
            assert git(bare, "rev-parse", "main") == sha and held.hits == []
            (bare / "hooks" / "pre-receive").unlink()
            _clone_commit_push(f"{server.url}/widget.git", home, "second")
            endpoint = endpoint_for("github_default")
            assert fake.app_tokens_issued == [endpoint.token]  # one token: clone, fetch, 2 pushes, the API
            assert fake.app_jwts_rejected == 0
        app_auth.forget_cache()
        fake.enable_app(4242, public, 77, lifetime=200)  # expires within the 5-minute margin: asked anew
        assert endpoint_for("github_default").token != endpoint_for("github_default").token
        fake.enable_app(4242, rsa_pem()[1], 77)  # another app key: GitHub refuses our JWT
        app_auth.forget_cache()
        with pytest.raises(ConfigError, match="refused an installation token.*HTTP 401"):
            endpoint_for("github_default")
    FIGURES["app tokens for 2 pushes + API"] = 1


def test_deploy_key_push_over_sshd(home, monkeypatch):
    from tests.toolchains import ensure_program

    sshd_path = ensure_program("sshd", "openssh-server")
    private, public = ed25519_openssh()
    bare = _bare(home)
    server = Sshd(home / "sshd", sshd_path, public)
    try:
        monkeypatch.setenv("AIRFLOW_CONN_WIDGET_DEPLOY", json.dumps({"conn_type": "generic",
                                                                     "extra": {"private_key": private}}))
        monkeypatch.setenv("CLONE_SSH_KNOWN_HOSTS", str(server.known_hosts))
        url = f"ssh://root@127.0.0.1:{server.port}{bare}"
        secret = [line.encode() for line in private.splitlines()[1:4]]
        held = HeldPush(bare, home / "marks", secret, [home / "home", home / "workspace", home / "tmp"])
        before = agents()
        started = time.monotonic()
        sha = _clone_commit_push(url, home, deploy_key="widget_deploy")
        FIGURES["deploy-key clone+fetch+push s"] = round(time.monotonic() - started, 2)
        held.join()
        assert git(bare, "rev-parse", "main") == sha
        assert held.hits == [], held.hits
        assert held.agents_mid_push - before  # a private agent served the push...
        assert agents() == before  # ...and none survives it
        (bare / "hooks" / "pre-receive").unlink()
        ws = Git(home / "workspace" / "ws", BOT, git_auth.for_remote(url, entry_name="widget",
                                                                     deploy_key="widget_deploy"))
        (ws.path / "more.txt").write_text("more\n")
        ws.commit_all("more")
        started = time.monotonic()
        push_branch(ws, "main")
        FIGURES["deploy-key push s"] = round(time.monotonic() - started, 2)
        # a host key that is not the server's: refused, not accepted
        other = home / "other_known_hosts"
        other.write_text(f"[127.0.0.1]:{server.port} {ed25519_openssh()[1]}\n")
        monkeypatch.setenv("CLONE_SSH_KNOWN_HOSTS", str(other))
        (ws.path / "more.txt").write_text("again\n")
        ws.commit_all("again")
        ws.auth = git_auth.for_remote(url, entry_name="widget", deploy_key="widget_deploy")
        with pytest.raises(GitError):
            push_branch(ws, "main", attempts=1)
        assert agents() == before
    finally:
        server.close()
    FIGURES["deploy-key leaks"] = len(held.hits)
    print("\nFIGURES", FIGURES)


def test_knobs_and_entries_are_checked(home, monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="CLONE_GIT_AUTH must be one of auto, token, own"):
        git_auth.mode_from_env({"CLONE_GIT_AUTH": "sometimes"})
    with pytest.raises(ConfigError, match="CLONE_SSH_KNOWN_HOSTS must be the absolute path"):
        git_auth.mode_from_env({"CLONE_SSH_KNOWN_HOSTS": "known_hosts"})
    with pytest.raises(ConfigError, match=r"repos.yaml entry #1: field 'deploy_key' needs an ssh 'url'"):
        validate_entry({"url": "https://github.com/o/widget.git", "deploy_key": "k"}, "repos.yaml entry #1")
    with pytest.raises(ConfigError, match="field 'deploy_key' must name an Airflow connection"):
        validate_entry({"url": "git@github.com:o/widget.git", "deploy_key": "a b"}, "repos.yaml entry #1")
    assert validate_entry({"url": "git@github.com:o/widget.git", "deploy_key": "k"}, "e").deploy_key == "k"
    monkeypatch.setenv("AIRFLOW_CONN_EMPTY_KEY", json.dumps({"conn_type": "generic", "password": "hunter2"}))
    with pytest.raises(ConfigError, match="entry 'widget', field 'deploy_key': connection 'empty_key' holds no"):
        git_auth.deploy_key_of("empty_key", "widget")
    with pytest.raises(ConfigError, match="App auth needs 'private_key'"):
        app_auth.installation_token("http://x", {"app_id": 1, "installation_id": 2}, "github_default")
    with pytest.raises(ConfigError, match="'installation_id' must be a positive integer"):
        app_auth.installation_token("http://x", {"app_id": 1, "installation_id": "2"}, "github_default")
    assert git_auth.kind_of("git@github.com:o/r.git") == ("ssh", "github.com")
    assert git_auth.kind_of("/srv/r.git") == ("other", None)
    assert git_auth.web_host("https://api.github.com") == "github.com"


def test_without_a_connection_your_own_helper_pushes(home, monkeypatch):
    token = "ghp_" + secrets.token_hex(20)
    _bare(home)
    monkeypatch.delenv("AIRFLOW_CONN_GITHUB_DEFAULT", raising=False)
    (home / "user.gitconfig").write_text(f'[credential]\n\thelper = "!f() {{ echo username=u; echo password={token}; }}; f"\n')
    monkeypatch.setenv("CLONE_GIT_CONFIG", str(home / "user.gitconfig"))
    with GitHttpServer(home / "remotes", token) as server:
        _clone_commit_push(f"{server.url}/widget.git", home)  # auto: no connection, so your helper answers
        monkeypatch.setenv("CLONE_GIT_AUTH", "token")
        with pytest.raises(GitError, match="CLONE_GIT_AUTH=token but the GitHub connection has no token"):
            _clone_commit_push(f"{server.url}/widget.git", home, "strict")
