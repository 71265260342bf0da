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

from typing import TYPE_CHECKING

from clone.errors import GitHubError

if TYPE_CHECKING:
    from clone.github.client import GitHubClient

# PyGithub is imported inside the functions: DAG files import this module at parse time.

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


def _raise(what: str, e: Exception, client: GitHubClient) -> None:
    """Network failures, 5xx and rate limits raise GitHubUnavailable; 401 names the connection."""
    from github import GithubException

    from clone.github.client import failure, is_transient, message_of

    if isinstance(e, GithubException) and not is_transient(e):
        if e.status == 401:
            raise GitHubError(f"{what} answered 401 ({message_of(e)}): the GitHub token was rejected; "
                              "check the password of the GitHub connection") from e
        raise GitHubError(f"{what} answered {e.status}: {message_of(e)}") from e
    if isinstance(e, GithubException):
        raise GitHubUnavailable(str(failure(what, e, client.retry))) from e
    raise GitHubUnavailable(f"{what}: GitHub API unreachable ({type(e).__name__}: {e}; "
                            f"CLONE_GITHUB_RETRIES={client.retry.retries})") from e


def token_login(client: GitHubClient) -> str:
    """The login of the account the token belongs to (``GET /user``)."""
    try:
        login = client.github.get_user().login
    except Exception as e:
        _raise("GET /user", e, client)
    if not login:
        raise GitHubError("GET /user answered no login")
    return str(login)


def get_repo(client: GitHubClient, full_name: str) -> GitHubRepo | None:
    """``GET /repos/{full_name}``; None when it does not exist (or the token cannot see it)."""
    from github import GithubException


    path = f"/repos/{full_name}"
    try:
        repo = client.github.get_repo(full_name)
        data = repo.raw_data
    except GithubException as e:
        if e.status == 404:
            return None
        _raise(f"GET {path}", e, client)
    except Exception as e:
        _raise(f"GET {path}", e, client)
    return GitHubRepo.from_json(data, f"GET {path}")


def create_private_repo(client: GitHubClient, owner: str, name: str, description: str, *,
                        organisation: bool) -> GitHubRepo | None:
    """Create ``owner/name`` as a private, empty repository; None when the name already exists there."""
    from github import GithubException

    from clone.github.client import is_transient, message_of

    path = f"/orgs/{owner}/repos" if organisation else "/user/repos"
    try:
        account = client.github.get_organization(owner) if organisation else client.github.get_user()
        created = account.create_repo(name, description=description[:DESCRIPTION_MAX], private=True,
                                      auto_init=False)
    except GithubException as e:
        if e.status == 422 and "already exists" in message_of(e):
            return None
        if e.status == 404 and organisation:
            raise GitHubError(f"POST {path} answered 404: organisation {owner!r} (CLONE_GITHUB_OWNER) does not "
                              "exist or the token cannot see it") from e
        if e.status == 403 and not is_transient(e):
            raise GitHubError(f"POST {path} answered 403 ({message_of(e)}): the token may not create "
                              f"repositories for {owner!r}; it needs the 'repo' scope (and org permission)") from e
        _raise(f"POST {path}", e, client)
    except Exception as e:
        _raise(f"POST {path}", e, client)
    repo = GitHubRepo.from_json(created.raw_data, f"POST {path}")
    log.info("github: created the private repository %s", repo.full_name)
    return repo


def ensure_private_repo(client: GitHubClient, *, owner: str | None, name: str, description: str,
                        recorded: str | None,
                        is_ours: Callable[[GitHubRepo], bool]) -> tuple[GitHubRepo, bool]:
    """The project's private repository: the recorded one, a new one, or an existing one of ours.

    ``recorded`` is the ``owner/name`` saved by an earlier run; ``owner`` is CLONE_GITHUB_OWNER
    (None: the token's user). Returns (repo, created). Raises RepoNotOurs when the name is taken
    by a repository that is public or whose history is not ours.
    """
    if recorded:
        repo = get_repo(client, recorded)
        if repo is not None:
            _check_reusable(repo, is_ours, "recorded for this idea")
            log.info("github: reusing %s (recorded by an earlier run)", repo.full_name)
            return repo, False
        log.warning("github: %s was recorded by an earlier run but no longer exists; creating it again",
                    recorded)
    login = token_login(client)
    owner = owner or login
    organisation = owner.lower() != login.lower()
    created = create_private_repo(client, owner, name, description, organisation=organisation)
    if created is not None:
        return created, True
    existing = get_repo(client, f"{owner}/{name}")
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
