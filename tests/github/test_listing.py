"""Listing a GitHub organisation's or user's repositories for CLONE_DISCOVER_GITHUB (README, "Fleets from
GitHub"), against the local GitHub API double: more than 100 repositories (pagination through ``Link``
headers), active, stale, archived, disabled and forked ones, newest push first, and a stop at the first page
that reaches past the active window."""

from __future__ import annotations

import datetime as dt

import github
import pytest

from clone.errors import ConfigError, GitHubError
from clone.fleet.github_fleet import entries_from_listing
from clone.fleet.repo_entry import RepoEntry
from clone.github.listing import ListedRepo, list_active
from tests.fakes.github_api import FakeGitHub

TOKEN = "ghp_listingTOKEN0123456789abcdefABCDEFxy"
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)


def client(gh: FakeGitHub) -> github.Github:
    return github.Github(base_url=gh.url, auth=github.Auth.Token(TOKEN), seconds_between_requests=0,
                         seconds_between_writes=0)


def big_org(gh: FakeGitHub) -> dict[str, set[str]]:
    """acme: 250 repositories. Within 14 days: 120 to keep, 6 archived, 5 forks, 3 disabled (mixed in by
    push time); 116 older. Registered in a shuffled order, so only the server's sort puts them in order."""
    gh.add_org("acme")
    kinds: dict[str, set[str]] = {"keep": set(), "archived": set(), "fork": set(), "disabled": set(),
                                  "stale": set()}
    specs = []
    for i in range(134):
        kind = "archived" if i % 22 == 5 else "fork" if i % 26 == 7 else "disabled" if i % 45 == 11 else "keep"
        specs.append((f"active-{i:03}", kind, NOW - dt.timedelta(hours=2 * i + 1)))
    for i in range(116):
        specs.append((f"old-{i:03}", "stale", NOW - dt.timedelta(days=15 + i)))
    for name, kind, pushed in sorted(specs, key=lambda s: hash(s[0]) % 997):
        gh.add_repo(f"acme/{name}", pushed_at=pushed, archived=kind == "archived", fork=kind == "fork",
                    disabled=kind == "disabled")
        kinds[kind].add(f"acme/{name}")
    assert sum(map(len, kinds.values())) == 250 and len(kinds["keep"]) == 120, {k: len(v) for k, v in kinds.items()}
    return kinds


def test_an_organisation_of_250_repos_is_paginated_filtered_and_cut_at_the_window():
    with FakeGitHub(token=TOKEN) as gh:
        kinds = big_org(gh)
        listing = list_active(client(gh), ["acme"], 14, now=NOW)
        pages = [r for r in gh.requests if r.path == "/orgs/acme/repos"]
        assert gh.server_errors == []
    kept = [r.full_name for r in listing.kept]
    assert set(kept) == kinds["keep"]
    assert [r.pushed_at for r in listing.kept] == sorted((r.pushed_at for r in listing.kept), reverse=True)
    assert (listing.archived, listing.forks, listing.disabled) == (6, 5, 3)
    # Newest push first: the listing stopped at the first stale repository, on page 2 of 3.
    assert (listing.listed, listing.stale) == (135, 1)
    assert [(r.query.get("page"), r.query.get("per_page"), r.query.get("sort"), r.query.get("direction"))
            for r in pages] == [(None, "100", "pushed", "desc"), ("2", "100", "pushed", "desc")]
    assert len(gh.requests) == 2  # nothing else: no per-repo look-ups, no owner look-up
    print(f"discovery: 250 repos in acme, {listing.listed} listed, {len(kept)} kept, {len(gh.requests)} requests; "
          f"{listing.describe()}")


def test_a_window_wider_than_the_org_lists_every_page():
    with FakeGitHub(token=TOKEN) as gh:
        kinds = big_org(gh)
        listing = list_active(client(gh), ["acme"], 400, now=NOW)
        assert len(gh.requests) == 3
    assert listing.listed == 250 and len(listing.kept) == 120 + 116
    assert {r.full_name for r in listing.kept} == kinds["keep"] | kinds["stale"]


def test_users_the_tokens_own_account_with_private_repos_and_another_users_public_ones():
    with FakeGitHub(token=TOKEN, login="me") as gh:
        gh.add_repo("me/secret", private=True, pushed_at=NOW - dt.timedelta(days=1))
        gh.add_repo("me/public", pushed_at=NOW - dt.timedelta(days=2))
        gh.add_repo("me/ancient", pushed_at=NOW - dt.timedelta(days=90))
        gh.add_repo("alice/tool", pushed_at=NOW - dt.timedelta(days=3))
        gh.add_repo("alice/hidden", private=True, pushed_at=NOW - dt.timedelta(days=3))
        listing = list_active(client(gh), ["me", "alice"], 14, now=NOW)
        paths = [r.path for r in gh.requests]
    assert [r.full_name for r in listing.kept] == ["me/secret", "me/public", "alice/tool"]
    assert listing.owners == {"me": "user", "alice": "user"}
    # Tried as organisations first (404), the token's own login asked for once.
    assert paths == ["/orgs/me/repos", "/user", "/user/repos", "/orgs/alice/repos", "/users/alice/repos"]


def test_an_unknown_owner_is_a_config_error_naming_it_and_a_github_failure_is_a_github_error():
    with FakeGitHub(token=TOKEN) as gh:
        with pytest.raises(ConfigError, match="CLONE_DISCOVER_GITHUB: 'nobody' is neither an organisation nor"):
            list_active(client(gh), ["nobody"], 14, now=NOW)
        gh.add_org("acme")
        gh.inject(r"^/orgs/acme/repos$", 422, times=1)
        with pytest.raises(GitHubError, match="listing the repositories of 'acme' failed: HTTP 422"):
            list_active(client(gh), ["acme"], 14, now=NOW)


def listed(full_name: str, **kw) -> ListedRepo:
    owner, name = full_name.split("/")
    return ListedRepo(full_name=full_name, name=name, clone_url=f"https://github.com/{full_name}.git",
                      ssh_url=f"git@github.com:{full_name}.git", default_branch=kw.pop("branch", "main"),
                      pushed_at=NOW, **kw)


def test_repos_yaml_entries_win_and_names_stay_unique():
    declared = [
        RepoEntry(url="https://github.com/acme/tuned.git", name="tuned", github="acme/tuned", tasks_per_repo=2),
        RepoEntry(url="https://github.com/acme/off.git", name="off", github="acme/off", enabled=False),
        RepoEntry(url="https://git.example.com/x/app.git", name="app"),  # another repo called app
    ]
    repos = [listed("acme/tuned"), listed("acme/off"), listed("acme/app"), listed("other/app"),
             listed("acme/lib", branch="trunk")]
    entries, overridden = entries_from_listing(repos, declared, "https")
    assert [(e.name, e.url, e.github, e.branch) for e in entries] == [
        ("acme-app", "https://github.com/acme/app.git", "acme/app", "main"),
        ("other-app", "https://github.com/other/app.git", "other/app", "main"),
        ("lib", "https://github.com/acme/lib.git", "acme/lib", "trunk"),
    ]
    assert overridden == ["acme/tuned (repos.yaml entry tuned)", "acme/off (repos.yaml entry off, enabled: false)"]
    ssh, _ = entries_from_listing([listed("acme/lib")], [], "ssh")
    assert ssh[0].url == "git@github.com:acme/lib.git"
