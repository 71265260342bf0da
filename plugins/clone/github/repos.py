"""Creating a private GitHub repository for a new project, or reusing the one we made before.

``POST /orgs/{owner}/repos`` (``CLONE_GITHUB_OWNER``, an organisation) or ``POST /user/repos``
(the token's own account). When the name is taken (422 "name already exists"), the existing
repo is reused only if the caller says it is ours (empty, or its history is our local main's)
and it is private; otherwise :class:`RepoNotOurs` names it and says what to do.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import httpx

from clone.errors import GitHubError
from clone.github.api import ApiAnswer, GitHubApi

log = logging.getLogger(__name__)

DESCRIPTION_MAX = 300  # GitHub caps repository descriptions at 350 characters


class GitHubUnavailable(GitHubError):
    """GitHub could not be reached, failed (5xx) or rate-limited us: trying again later may work."""


class RepoNotOurs(GitHubError):
    """The repository name is taken by a repository that is not this project's."""


@dataclasses.dataclass(frozen=True)
class GitHubRepo:
    """The parts of a repository answer that publishing needs."""

    full_name: str
    clone_url: str
    ssh_url: str
    private: bool

    @classmethod
    def from_json(cls, data: Any, where: str) -> GitHubRepo:
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) and data.get(k)
                                                 for k in ("full_name", "clone_url", "ssh_url")):
            raise GitHubError(f"{where}: the answer has no full_name/clone_url/ssh_url")
        return cls(full_name=data["full_name"], clone_url=data["clone_url"], ssh_url=data["ssh_url"],
                   private=bool(data.get("private")))

    def url(self, protocol: str) -> str:
        """The URL to push to: ``ssh_url`` for ``ssh``, else ``clone_url`` (https)."""
        return self.ssh_url if protocol == "ssh" else self.clone_url


def _message(answer: ApiAnswer) -> str:
    data = answer.data if isinstance(answer.data, dict) else {}
    parts = [str(data.get("message") or "no message")]
    for error in data.get("errors") or []:
        if isinstance(error, dict):
            parts.append(str(error.get("message") or f"{error.get('field')} {error.get('code')}"))
        else:
            parts.append(str(error))
    return "; ".join(parts)


def call(api: GitHubApi, method: str, path: str, json: Any = None) -> ApiAnswer:
    """One request; network failures, 5xx and rate limits raise GitHubUnavailable."""
    try:
        answer = api.request(method, path, json=json)
    except httpx.HTTPError as e:
        raise GitHubUnavailable(f"{method} {path}: GitHub API unreachable ({type(e).__name__}: {e}; "
                                f"CLONE_GITHUB_RETRIES={api.retry.retries})") from e
    if answer.status >= 500 or answer.rate_limit_wait() is not None:
        raise GitHubUnavailable(f"{method} {path} answered {answer.status}{answer.tried}: {_message(answer)}")
    if answer.status == 401:
        raise GitHubError(f"{method} {path} answered 401 ({_message(answer)}): the GitHub token was "
                          "rejected; check the password of the GitHub connection")
    return answer


def token_login(api: GitHubApi) -> str:
    """The login of the account the token belongs to (``GET /user``)."""
    answer = call(api, "GET", "/user")
    login = answer.data.get("login") if answer.ok and isinstance(answer.data, dict) else None
    if not login:
        raise GitHubError(f"GET /user answered {answer.status}: {_message(answer)}")
    return str(login)


def get_repo(api: GitHubApi, full_name: str) -> GitHubRepo | None:
    """``GET /repos/{full_name}``; None when it does not exist (or the token cannot see it)."""
    path = f"/repos/{full_name}"
    answer = call(api, "GET", path)
    if answer.status == 404:
        return None
    if not answer.ok:
        raise GitHubError(f"GET {path} answered {answer.status}: {_message(answer)}")
    return GitHubRepo.from_json(answer.data, f"GET {path}")


def create_private_repo(api: GitHubApi, owner: str, name: str, description: str, *,
                        organisation: bool) -> GitHubRepo | None:
    """Create ``owner/name`` as a private, empty repository; None when the name already exists there."""
    path = f"/orgs/{owner}/repos" if organisation else "/user/repos"
    body = {"name": name, "description": description[:DESCRIPTION_MAX], "private": True, "auto_init": False}
    answer = call(api, "POST", path, json=body)
    if answer.status == 201:
        repo = GitHubRepo.from_json(answer.data, f"POST {path}")
        log.info("github: created the private repository %s", repo.full_name)
        return repo
    if answer.status == 422 and "already exists" in _message(answer):
        return None
    if answer.status == 404 and organisation:
        raise GitHubError(f"POST {path} answered 404: organisation {owner!r} (CLONE_GITHUB_OWNER) does not "
                          "exist or the token cannot see it")
    if answer.status == 403:
        raise GitHubError(f"POST {path} answered 403 ({_message(answer)}): the token may not create "
                          f"repositories for {owner!r}; it needs the 'repo' scope (and org permission)")
    raise GitHubError(f"POST {path} answered {answer.status}: {_message(answer)}")


def ensure_private_repo(api: GitHubApi, *, owner: str | None, name: str, description: str,
                        recorded: str | None,
                        is_ours: Callable[[GitHubRepo], bool]) -> tuple[GitHubRepo, bool]:
    """The project's private repository: the recorded one, a new one, or an existing one of ours.

    ``recorded`` is the ``owner/name`` saved by an earlier run; ``owner`` is CLONE_GITHUB_OWNER
    (None: the token's user). Returns (repo, created). Raises RepoNotOurs when the name is taken
    by a repository that is public or whose history is not ours.
    """
    if recorded:
        repo = get_repo(api, recorded)
        if repo is not None:
            _check_reusable(repo, is_ours, "recorded for this idea")
            log.info("github: reusing %s (recorded by an earlier run)", repo.full_name)
            return repo, False
        log.warning("github: %s was recorded by an earlier run but no longer exists; creating it again",
                    recorded)
    login = token_login(api)
    owner = owner or login
    organisation = owner.lower() != login.lower()
    created = create_private_repo(api, owner, name, description, organisation=organisation)
    if created is not None:
        return created, True
    existing = get_repo(api, f"{owner}/{name}")
    if existing is None:
        raise GitHubError(f"GitHub says {owner}/{name} already exists but GET /repos/{owner}/{name} finds "
                          "nothing the token can see; choose another repo_name")
    _check_reusable(existing, is_ours, "already exists")
    log.info("github: %s already exists and is ours (empty, or holding our history): reusing it",
             existing.full_name)
    return existing, False


def _check_reusable(repo: GitHubRepo, is_ours: Callable[[GitHubRepo], bool], how: str) -> None:
    if not repo.private:
        raise RepoNotOurs(f"GitHub repository {repo.full_name} {how} and is public; ideas are only published "
                          "to private repositories: choose another repo_name, or make it private")
    if not is_ours(repo):
        raise RepoNotOurs(f"GitHub repository {repo.full_name} {how} and holds history that is not this "
                          "project's; choose another repo_name, or rename or delete that repository")
