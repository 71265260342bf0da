"""Listing the repositories of GitHub organisations and users (``CLONE_DISCOVER_GITHUB``), newest push first.

Through the provider's ``GithubHook`` (PyGithub), so the ``github_default`` connection's token and host
(GitHub Enterprise: ``https://HOST/api/v3``) apply. An owner is tried as an organisation first
(``GET /orgs/{owner}/repos``: every repository the token can see); on 404 it is a user
(``GET /user/repos?affiliation=owner`` for the token's own account, which includes its private
repositories, else ``GET /users/{owner}/repos``). Pages of 100 are asked for sorted by push time,
newest first, so the listing stops at the first page that reaches past the active window.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from clone.errors import ConfigError, GitHubError

log = logging.getLogger(__name__)

PER_PAGE = 100  # GitHub's maximum


@dataclasses.dataclass(frozen=True)
class ListedRepo:
    """The parts of a listed repository that discovery needs."""

    full_name: str
    name: str
    clone_url: str
    ssh_url: str
    default_branch: str
    pushed_at: dt.datetime | None
    archived: bool = False
    disabled: bool = False
    fork: bool = False


@dataclasses.dataclass
class Listing:
    """What one discovery listed: the active repositories kept and the count of every other kind."""

    kept: list[ListedRepo] = dataclasses.field(default_factory=list)
    listed: int = 0
    stale: int = 0
    archived: int = 0
    disabled: int = 0
    forks: int = 0
    owners: dict[str, str] = dataclasses.field(default_factory=dict)  # owner -> "organisation" | "user"
    cut: list[str] = dataclasses.field(default_factory=list)  # owners whose listing stopped at the window

    def describe(self) -> str:
        owners = ", ".join(f"{o} ({k}{', stopped at the window' if o in self.cut else ''})"
                           for o, k in self.owners.items())
        return (f"{self.listed} repo(s) listed from {owners}; {len(self.kept)} kept; skipped: {self.stale} "
                f"not pushed within the window, {self.archived} archived, {self.disabled} disabled, "
                f"{self.forks} fork(s)")


def _listed(repo: Any) -> ListedRepo:
    pushed = repo.pushed_at
    if pushed is not None and pushed.tzinfo is None:
        pushed = pushed.replace(tzinfo=dt.timezone.utc)
    return ListedRepo(full_name=repo.full_name, name=repo.name, clone_url=repo.clone_url,
                      ssh_url=repo.ssh_url, default_branch=repo.default_branch or "main", pushed_at=pushed,
                      archived=bool(repo.archived), disabled=bool(repo.disabled), fork=bool(repo.fork))


def _owner_repos(client: Any, owner: str, me: list[str]) -> tuple[str, Iterator[Any]]:
    """(``organisation`` or ``user``, the owner's repositories newest push first). Pages are fetched as the
    iteration reaches them, following GitHub's ``Link: rel="next"``; the first one is fetched here."""
    from github import UnknownObjectException

    lazy = client.withLazy(True)  # lazy: naming an owner sends no request; only the listing's pages do
    try:
        return "organisation", _started(lazy.get_organization(owner).get_repos(type="all", sort="pushed",
                                                                               direction="desc"))
    except UnknownObjectException:
        pass
    if not me:
        me.append(client.get_user().login)  # GET /user, once per listing
    if me[0].lower() == owner.lower():
        return "user", _started(client.get_user().get_repos(affiliation="owner", sort="pushed",
                                                            direction="desc"))
    try:
        return "user", _started(client.get_user(owner, lazy=True).get_repos(type="owner", sort="pushed",
                                                                          direction="desc"))
    except UnknownObjectException:
        raise ConfigError(f"CLONE_DISCOVER_GITHUB: {owner!r} is neither an organisation nor a user this "
                          "token can see on GitHub") from None


def _started(pages: Iterable[Any]) -> Iterator[Any]:
    """``pages`` with its first page already fetched (so a 404 shows here), the rest fetched when reached."""
    iterator = iter(pages)
    first = next(iterator, None)
    return iter(()) if first is None else itertools.chain((first,), iterator)


def list_active(client: Any, owners: Iterable[str], active_days: int, *,
                now: dt.datetime | None = None) -> Listing:
    """The repositories of ``owners`` pushed within ``active_days``, not archived, disabled or forked.

    ``client`` is a PyGithub ``Github`` (``GithubHook(conn_id).get_conn()``). Raises ConfigError for an
    owner that does not exist, GitHubError when GitHub fails.
    """
    from github import GithubException

    client.per_page = PER_PAGE
    cutoff = (now or dt.datetime.now(dt.timezone.utc)) - dt.timedelta(days=active_days)
    listing, me, seen = Listing(), [], set()
    for owner in owners:
        try:
            kind, repos = _owner_repos(client, owner, me)
            listing.owners[owner] = kind
            for raw in repos:
                repo = _listed(raw)
                if repo.full_name.lower() in seen:
                    continue
                seen.add(repo.full_name.lower())
                listing.listed += 1
                if repo.pushed_at is None or repo.pushed_at < cutoff:
                    listing.stale += 1
                    if repo.pushed_at is not None:
                        listing.cut.append(owner)
                        break  # newest push first: every repository after this one is older still
                elif repo.archived:
                    listing.archived += 1
                elif repo.disabled:
                    listing.disabled += 1
                elif repo.fork:
                    listing.forks += 1
                else:
                    listing.kept.append(repo)
        except GithubException as e:
            message = e.data.get("message") if isinstance(e.data, dict) else e.data
            raise GitHubError(f"CLONE_DISCOVER_GITHUB: listing the repositories of {owner!r} failed: "
                              f"HTTP {e.status}: {message}") from e
    log.info("discover (GitHub): %s", listing.describe())
    return listing


def github_client(conn_id: str) -> Any:
    """A PyGithub client for ``conn_id`` through the provider's hook (token and Enterprise host)."""
    from airflow.providers.github.hooks.github import GithubHook

    return GithubHook(github_conn_id=conn_id).get_conn()
