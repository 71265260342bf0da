"""GitHubClient: the provider's GithubHook reads the Airflow connection (token, Enterprise host), PyGithub
calls the API there with the token, and a connection without a token is an error naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clone.errors import GitHubError
from clone.github.client import GitHubClient
from clone.github.connection import base_url_of
from clone.github.repos import token_login
from tests.fakes.github_api import FakeGitHub

TOKEN = "tok-client"


@pytest.fixture
def gh(tmp_path: Path):
    with FakeGitHub(token=TOKEN, repos_root=tmp_path / "gh") as server:
        yield server
        assert server.server_errors == []


def test_the_connection_gives_the_host_and_the_token(gh, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT",
                       json.dumps({"conn_type": "github", "host": gh.url + "/", "password": TOKEN}))
    with GitHubClient.for_connection("github_default", throttle=False) as client:
        assert client.base_url == gh.url and TOKEN not in repr(client)
        assert token_login(client) == "clone-bot"
    (asked,) = [r for r in gh.requests if r.path == "/user"]
    assert asked.headers.get("authorization") == f"token {TOKEN}"


def test_a_connection_without_a_token_is_an_error_naming_it(monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GH_EMPTY", json.dumps({"conn_type": "github", "host": "http://127.0.0.1:9"}))
    with pytest.raises(GitHubError, match="Airflow connection 'gh_empty'.*GitHub token"):
        GitHubClient.for_connection("gh_empty")


@pytest.mark.parametrize(("host", "expected"), [
    ("", "https://api.github.com"), (None, "https://api.github.com"),
    ("github.example.com/api/v3", "https://github.example.com/api/v3"),
    ("https://github.example.com/api/v3/", "https://github.example.com/api/v3"),
])
def test_enterprise_hosts(host, expected) -> None:
    assert base_url_of(host) == expected
    assert GitHubClient.for_token(host or "", "t").github.requester.base_url == expected
