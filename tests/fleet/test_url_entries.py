"""repos.yaml ``url:`` entries (README, "repos.yaml"): a repo with no local checkout, named after its URL,
its GitHub slug read from github.com URLs; the workspace clones it from the URL (a per-worker cache that is
made again when missing)."""

from __future__ import annotations

import json
import shutil

import pytest

from clone.config.settings import load_settings
from clone.fleet.remote_url import github_slug_from_url, name_from_url
from clone.fleet.repos_file import load_fleet
from clone.work.workspace import prepare
from tests.repos import commit_file, git, make_remote_and_checkout


@pytest.mark.parametrize(("url", "name", "github"), [
    ("https://github.com/acme/widget.git", "widget", "acme/widget"),
    ("https://github.com/acme/widget", "widget", "acme/widget"),
    ("https://x-access-token:SECRET@github.com/acme/widget.git", "widget", "acme/widget"),
    ("git@github.com:acme/Widget.js.git", "Widget.js", "acme/Widget.js"),
    ("ssh://git@github.com/acme/widget.git", "widget", "acme/widget"),
    ("https://gitlab.example.com/group/sub/tool.git", "tool", None),
    ("git@git.example.com:team/tool.git", "tool", None),
    ("file:///srv/git/my%20lib.git", "my-lib", None),
    ("https://github.com/acme/widget.git/", "widget", "acme/widget"),
])
def test_name_and_github_from_the_url(tmp_path, url, name, github):
    assert name_from_url(url) == name
    assert github_slug_from_url(url) == github
    source = tmp_path / "repos.yaml"
    source.write_text(json.dumps({"repos": [{"url": url}]}))
    (entry,), problems = load_fleet(source)
    assert problems == []
    assert (entry.path, entry.url, entry.name, entry.github) == (None, url, name, github)


def test_keys_given_win_over_what_the_url_implies(tmp_path):
    source = tmp_path / "repos.yaml"
    source.write_text("repos:\n  - url: https://git.example.com/a/b.git\n    name: bee\n    github: acme/bee\n"
                      "    branch: develop\n    push_mode: gated\n")
    (entry,), problems = load_fleet(source)
    assert problems == []
    assert (entry.name, entry.github, entry.branch, entry.push_mode) == ("bee", "acme/bee", "develop", "gated")


@pytest.mark.parametrize(("entry", "message"), [
    ({"url": "https://github.com/acme/a.git", "path": "{good}"},
     "give exactly one of 'path' (a local checkout) and 'url' (a git remote URL), got both"),
    ({"url": ""}, "got neither"),
    ({"url": 42}, "field 'url' must be str"),
    ({"url": "/srv/git/a.git"}, "field 'url' '/srv/git/a.git' is a local path: use 'path:'"),
    ({"url": "ext::sh -c touch% /tmp/pwned"}, "field 'url'"),
    ({"url": "ext::ssh/x"}, "'<transport>::' form"),
    ({"url": "--upload-pack=touch /tmp/x"}, "is not a git remote URL"),
    ({"url": "ftp://example.com/a.git"}, "scheme 'ftp' is not one of"),
    ({"url": "https:///a.git"}, "has no host"),
    ({"url": "https://github.com/"}, "names no repository"),
    ({"url": "https://github.com/acme/a.git", "remote": "upstream"}, "field 'remote' applies to 'path:' entries"),
    ({"url": "https://github.com/acme/a.git", "name": "../x"}, "field 'name'"),
])
def test_bad_url_entry_names_file_entry_and_field(tmp_path, entry, message):
    good = tmp_path / "good"
    good.mkdir()
    git(good, "init", "--quiet")
    entry = {k: (str(good) if v == "{good}" else v) for k, v in entry.items()}
    source = tmp_path / "repos.yaml"
    source.write_text(json.dumps({"repos": [entry, {"url": "https://github.com/acme/other.git"}]}))
    entries, problems = load_fleet(source)
    assert [e.name for e in entries] == ["other"]
    assert len(problems) == 1 and problems[0].startswith(f"{source}: entry 1"), problems
    assert message in problems[0], problems[0]


def test_duplicate_urls_and_names_across_path_and_url_entries(tmp_path):
    checkout, _ = make_remote_and_checkout(tmp_path, "app")
    source = tmp_path / "repos.yaml"
    source.write_text(json.dumps({"repos": [
        {"path": str(checkout)},
        {"url": "https://github.com/acme/app.git"},  # same default name as the checkout
        {"url": "https://github.com/acme/tool.git"},
        {"url": "https://GitHub.com/acme/tool", "name": "tool2"},  # the same remote spelled differently
    ]}))
    entries, problems = load_fleet(source)
    assert [e.name for e in entries] == ["app", "tool"]
    assert "entry 2" in problems[0] and "field 'name' 'app' duplicates" in problems[0]
    assert "entry 4" in problems[1] and "field 'url'" in problems[1] and "duplicates" in problems[1]


def test_credentials_in_a_url_never_show_in_problems(tmp_path):
    source = tmp_path / "repos.yaml"
    url = "https://x-access-token:ghp_SECRET123@github.com/acme/a.git"
    source.write_text(json.dumps({"repos": [{"url": url, "tasks_per_repo": 0}]}))
    _, problems = load_fleet(source)
    assert problems and "ghp_SECRET123" not in problems[0] and "tasks_per_repo" in problems[0]


def test_the_bash_versions_path_entries_load_unchanged(tmp_path):
    checkout, _ = make_remote_and_checkout(tmp_path, "legacy")
    source = tmp_path / "repos.json"
    source.write_text(json.dumps({"repos": [{"path": str(checkout)}]}))
    (entry,), problems = load_fleet(source)
    assert problems == [] and (entry.path, entry.url, entry.name) == (str(checkout), None, "legacy")


def test_workspace_clones_a_url_repo_and_recovers_when_the_cache_is_gone(tmp_path, clone_env):
    seed, bare = make_remote_and_checkout(tmp_path, "lib")
    shutil.rmtree(seed.parent)  # no checkout anywhere: only the remote
    source = clone_env["repos_file"]
    source.write_text(f"repos:\n  - url: {bare.as_uri()}\n")
    (entry,), problems = load_fleet(source)
    assert problems == [] and entry.name == "lib"
    settings = load_settings()
    first = prepare(entry, settings)
    assert first.has_remote and first.github is None
    assert git(tmp_path / "workspace" / "repos" / "lib", "remote", "get-url", "origin") == bare.as_uri()
    # The remote moves on; the cache is wiped (a fresh worker, a new pod): the next pass starts from the tip.
    other = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", str(bare), str(other))
    tip = commit_file(other, "b.txt", "b\n")
    git(other, "push", "--quiet", "origin", "main")
    shutil.rmtree(first.workdir)
    second = prepare(entry, settings)
    assert second.base_sha == tip and second.workdir == first.workdir
    # And with the cache present, it is refreshed, not re-cloned.
    tip2 = commit_file(other, "c.txt", "c\n")
    git(other, "push", "--quiet", "origin", "main")
    assert prepare(entry, settings).base_sha == tip2


def test_the_report_reads_a_url_repo_through_a_copy_under_the_workspace(tmp_path, clone_env):
    from clone.fleet.report import fleet_report

    seed, bare = make_remote_and_checkout(tmp_path, "svc")
    pushed = commit_file(seed, "b.txt", "b\n", "svc: second")
    git(seed, "push", "--quiet", "origin", "main")
    source = tmp_path / "fleet.yaml"
    source.write_text(f"repos:\n  - url: {bare.as_uri()}\n  - url: {(tmp_path / 'nowhere.git').as_uri()}\n")
    report = fleet_report(source, "2000-01-01", workspace=clone_env["workspace"])
    assert report.counts == {"svc": 2}
    assert report.sources["svc"] == f"{bare.as_uri()} main {pushed[:12]} (remote, fetched)"
    assert len(report.problems) == 1 and "nowhere: skipped: git ls-remote" in report.problems[0]
    without = fleet_report(source, "2000-01-01")  # no workspace to fetch into: said, not crashed
    assert any("svc: skipped: svc: a 'url:' repo is read through a copy under CLONE_WORKSPACE" in p
               for p in without.problems), without.problems
