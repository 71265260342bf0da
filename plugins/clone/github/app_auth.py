"""GitHub App installation tokens: the ``github_default`` connection in App mode (no password; its extra holds
``app_id``, ``installation_id`` and ``private_key`` or ``key_path``, as the GitHub provider's ``GithubHook``
reads it) gives a token for the API and for git pushes alike, asked from GitHub with an RS256 JWT through
PyGithub's ``GithubIntegration`` and cached in the process until 5 minutes before it expires."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from clone.errors import ConfigError

#: A cached token is used until this many seconds before it expires.
REFRESH_MARGIN_SECONDS = 300
_CACHE: dict[tuple[str, str, int], tuple[str, float]] = {}
_LOCK = threading.Lock()


def is_app(extra: Mapping[str, Any] | None) -> bool:
    """True when a connection's extra asks for GitHub App auth."""
    return bool(extra) and "app_id" in extra


def _settings(extra: Mapping[str, Any], conn_id: str) -> tuple[str, int, str]:
    where = f"connection {conn_id!r}, extra"
    app_id, installation = extra.get("app_id"), extra.get("installation_id")
    if isinstance(app_id, bool) or not isinstance(app_id, str | int) or not str(app_id).strip():
        raise ConfigError(f"{where}: field 'app_id' must be the GitHub App's id (a number), got {app_id!r}")
    if isinstance(installation, bool) or not isinstance(installation, int) or installation < 1:
        raise ConfigError(f"{where}: field 'installation_id' must be a positive integer, got {installation!r}")
    key = extra.get("private_key")
    if not key and extra.get("key_path"):
        path = str(extra["key_path"])
        if not path.endswith(".pem"):
            raise ConfigError(f"{where}: field 'key_path' must name a .pem private key, got {path!r}")
        try:
            with open(path, encoding="utf-8") as handle:
                key = handle.read()
        except OSError as e:
            raise ConfigError(f"{where}: field 'key_path': cannot read {path}: {e.strerror}") from None
    if not isinstance(key, str) or "PRIVATE KEY" not in key:
        raise ConfigError(f"{where}: App auth needs 'private_key' (PEM text) or 'key_path' (a .pem file)")
    return str(app_id).strip(), installation, key


def installation_token(base_url: str, extra: Mapping[str, Any], conn_id: str = "github_default") -> str:
    """An installation token for the App the extra names, from the cache while it has 5+ minutes left."""
    app_id, installation, key = _settings(extra, conn_id)
    slot = (base_url, app_id, installation)
    with _LOCK:
        cached = _CACHE.get(slot)
        if cached and cached[1] - REFRESH_MARGIN_SECONDS > time.time():
            return cached[0]
        from github import Auth, GithubException, GithubIntegration

        try:
            integration = GithubIntegration(auth=Auth.AppAuth(app_id, key), base_url=base_url)
            granted = integration.get_access_token(installation, extra.get("token_permissions") or None)
        except GithubException as e:
            raise ConfigError(f"connection {conn_id!r}: GitHub refused an installation token for app {app_id} "
                              f"installation {installation}: HTTP {e.status}") from None
        except ValueError as e:  # a key PyJWT/cryptography cannot load
            raise ConfigError(f"connection {conn_id!r}, extra: the App private key is not usable: {e}") from None
        expires = granted.expires_at.timestamp() if granted.expires_at else time.time() + 3600
        _CACHE[slot] = (granted.token, expires)
        return granted.token


def forget_cache() -> None:
    """Drop every cached token (tests; a rotated key)."""
    with _LOCK:
        _CACHE.clear()
