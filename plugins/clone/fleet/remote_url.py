"""Git remote URLs as repos.yaml's ``url:`` gives them: which forms are accepted, the repo name and the
GitHub ``owner/name`` they imply.

Accepted: ``https://``, ``http://``, ``ssh://``, ``git://`` and ``file://`` URLs, and scp-like
``[user@]host:path`` (``git@github.com:acme/widget.git``). Refused: plain paths (a local checkout is a
``path:`` entry; a local bare remote is ``file:///...``), option-like values, and git's ``<transport>::``
forms such as ``ext::`` (they run commands).
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from clone.errors import ConfigError

_SCHEMES = ("https", "http", "ssh", "git", "file")
_SCP_LIKE = re.compile(r"^(?:[A-Za-z0-9._~-]+@)?(?P<host>[A-Za-z0-9.-]+):(?!//)(?P<path>[^\s]+)$")
_GITHUB_URL = re.compile(
    r"^(?:https?://(?:[^@/]+@)?github\.com/|(?:[A-Za-z0-9._-]+@)?github\.com:|ssh://(?:[^@/]+@)?github\.com/)"
    r"(?P<slug>[A-Za-z0-9-]+/[A-Za-z0-9._-]+?)(?:\.git)?/?$"
)


def github_slug_from_url(url: str | None) -> str | None:
    """``owner/name`` when ``url`` points at github.com (https, ssh or scp-like form), else None."""
    match = _GITHUB_URL.match(url or "")
    return match.group("slug") if match else None


def url_path(url: str) -> str:
    """The repository path part of a URL (``/acme/widget.git`` of ``https://host/acme/widget.git``)."""
    scp = _SCP_LIKE.match(url) if "://" not in url else None
    return scp.group("path") if scp else unquote(urlsplit(url).path)


def name_from_url(url: str) -> str:
    """The default repo name: the URL's last path part without ``.git``, made safe."""
    last = url_path(url).rstrip("/").rsplit("/", 1)[-1]
    if last.endswith(".git"):
        last = last[:-4]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", last).strip("-.") or "repo"
    return name[:100]


def same_remote(url: str) -> str:
    """A key under which two spellings of one remote compare equal (case, trailing ``/`` and ``.git``)."""
    key = url.strip().rstrip("/")
    key = key[:-4] if key.endswith(".git") else key
    return key.lower()


def check_url(value: str, where: str) -> str:
    """``value`` if it is a git remote URL Clone will use; else ConfigError naming ``where`` and ``url``."""
    url = value.strip()
    hint = "give a git remote URL such as https://github.com/owner/name.git, git@github.com:owner/name.git " \
           "or file:///path/to/bare.git"
    if not url or any(c in url for c in "\0\n\r\t ") or url.startswith("-"):
        raise ConfigError(f"{where}: field 'url' {value!r} is not a git remote URL; {hint}")
    if "::" in url.split("/", 1)[0]:
        raise ConfigError(f"{where}: field 'url' {value!r} uses a '<transport>::' form, which git runs as a "
                          f"command; {hint}")
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme.lower() not in _SCHEMES:
            raise ConfigError(f"{where}: field 'url' {value!r}: scheme {parts.scheme!r} is not one of "
                              f"{', '.join(_SCHEMES)}")
        if parts.scheme.lower() != "file" and not parts.hostname:
            raise ConfigError(f"{where}: field 'url' {value!r} has no host; {hint}")
        if not parts.path.strip("/"):
            raise ConfigError(f"{where}: field 'url' {value!r} names no repository (empty path); {hint}")
        return url
    if _SCP_LIKE.match(url):
        return url
    if url.startswith(("/", "~", ".")):
        raise ConfigError(f"{where}: field 'url' {value!r} is a local path: use 'path:' for a checkout, or "
                          f"file://{url if url.startswith('/') else '/abs/path'} for a bare remote")
    raise ConfigError(f"{where}: field 'url' {value!r} is not a git remote URL; {hint}")
