"""Which environment variables each kind of subprocess may see.

Three audiences: the agent and the repo's own checks run code Clone did not write, so they get
an allowlist; git runs Clone's own commands and needs the user's git set-up (ssh agent, askpass,
proxies), so it gets the worker's environment minus Airflow's and GitHub's secrets.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

#: Everything an agent sees of the worker's environment (plus LC_* and CLONE_AGENT_ENV_PASSTHROUGH).
AGENT_ALLOWLIST = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR",
    "CODEX_HOME", "OPENAI_API_KEY", "CODEX_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID",
    "OPENAI_ORGANIZATION", "OPENAI_PROJECT", "AZURE_OPENAI_API_KEY",
    "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "ANTHROPIC_MODEL", "CLAUDE_CONFIG_DIR",
    "CLAUDE_CODE_OAUTH_TOKEN", "CLAUDE_CODE_MAX_RETRIES",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
)
#: Toolchain locations the repo's checks may need; model keys are not among them.
CHECK_ALLOWLIST = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR",
    "GOPATH", "GOCACHE", "GOMODCACHE", "GOROOT", "CARGO_HOME", "RUSTUP_HOME", "JAVA_HOME", "MAVEN_HOME",
    "GRADLE_USER_HOME", "NODE_PATH", "NVM_DIR", "PYENV_ROOT", "VIRTUAL_ENV", "UV_CACHE_DIR", "PIP_CACHE_DIR",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
    "GOPROXY", "GOFLAGS", "GONOSUMDB", "GONOPROXY", "GOPRIVATE", "GOSUMDB", "GOINSECURE", "GOAUTH", "GOENV",
    "GOTOOLCHAIN", "CGO_ENABLED",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
)
#: Package managers' own settings (index URLs, caches, mirrors) that setup and the checks must keep.
CHECK_PREFIXES = ("UV_", "POETRY_", "PIP_", "npm_config_", "NPM_CONFIG_", "CARGO_", "TOX_", "NOX_", "PRE_COMMIT_")
#: Never handed to an agent or a check, even when listed in CLONE_AGENT_ENV_PASSTHROUGH; never to git.
SECRET_PREFIXES = ("AIRFLOW_", "CLONE_")
SECRET_NAMES = frozenset({"GITHUB_TOKEN", "GH_TOKEN", "GITHUB_PAT", "GH_ENTERPRISE_TOKEN"})


def is_forbidden(name: str) -> bool:
    return name in SECRET_NAMES or name.startswith(SECRET_PREFIXES)


def allowlisted(names: Iterable[str], base: Mapping[str, str] | None = None,
                prefixes: tuple[str, ...] = ()) -> dict[str, str]:
    """The variables of ``base`` (default ``os.environ``) named in ``names`` or starting with one of
    ``prefixes``, plus LC_*; never a secret."""
    base = os.environ if base is None else base
    wanted = set(names)
    starts = ("LC_", *prefixes)
    env = {k: v for k, v in base.items() if (k in wanted or k.startswith(starts)) and not is_forbidden(k)}
    env.setdefault("PATH", os.defpath)
    return env


def without_secrets(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` minus Airflow's and Clone's settings and GitHub tokens (for Clone's own git commands)."""
    base = os.environ if base is None else base
    return {k: v for k, v in base.items() if not is_forbidden(k)}
