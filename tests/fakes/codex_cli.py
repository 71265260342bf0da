"""Install the real Codex CLI for tests and point it at a local fake model server.

* ``install_codex(cache_dir)`` installs ``@openai/codex@0.169.0`` from the npm registry (once; file-locked so
  that parallel pytest processes do not race) and returns the ``codex`` launcher.
* ``write_codex_home(codex_home, base_url)`` writes a ``config.toml`` that sends every model request to
  ``base_url`` (see ``tests/fakes/model_server.py``) and keeps codex away from the network.

Measured with codex 0.169.0 (see ``write_codex_home`` for why each setting is there).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.fakes.npm_install import install_package
from typing import Any

__all__ = [
    "CODEX_NPM_SPEC",
    "CODEX_VERSION",
    "CodexInstallError",
    "codex_config_toml",
    "default_cache_dir",
    "fake_model_catalog",
    "install_codex",
    "write_codex_home",
]

CODEX_VERSION = "0.169.0"
CODEX_NPM_SPEC = f"@openai/codex@{CODEX_VERSION}"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class CodexInstallError(RuntimeError):
    """``npm install`` of the Codex CLI failed (the message carries npm's output)."""


def default_cache_dir() -> Path:
    """``$CLONE_TEST_CACHE/codex-0.169.0``, else ``<project root>/.cache/test-tools/codex-0.169.0``."""
    root = os.environ.get("CLONE_TEST_CACHE") or str(PROJECT_ROOT / ".cache" / "test-tools")
    return Path(root) / f"codex-{CODEX_VERSION}"


def _launcher(cache_dir: Path) -> Path:
    return cache_dir / "node_modules" / ".bin" / "codex"


def _installed_version(cache_dir: Path) -> str | None:
    pkg = cache_dir / "node_modules" / "@openai" / "codex" / "package.json"
    try:
        return json.loads(pkg.read_text()).get("version")
    except (OSError, ValueError):
        return None


def _is_installed(cache_dir: Path) -> bool:
    launcher = _launcher(cache_dir)
    if not (launcher.exists() and _installed_version(cache_dir) == CODEX_VERSION):
        return False
    # The launcher is useless without the platform package that holds the native binary.
    platform_pkgs = list((cache_dir / "node_modules" / "@openai").glob("codex-*/vendor/*/bin/codex"))
    return bool(platform_pkgs)


def install_codex(cache_dir: Path | None = None) -> Path:
    """Install ``@openai/codex@0.169.0`` into ``cache_dir`` unless it is already there; return the launcher.

    ``cache_dir`` defaults to :func:`default_cache_dir`. Idempotent and safe to call from several processes
    at once (an ``fcntl`` lock on ``<parent>/.<name>.lock``). Raises :class:`CodexInstallError` with npm's
    output when npm is missing or the install fails.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    install_package(CODEX_NPM_SPEC, cache_dir, is_installed=_is_installed, error=CodexInstallError,
                    expected=f"{_launcher(cache_dir)} and the native binary")
    _link_sandbox_helper(cache_dir)
    return _launcher(cache_dir)


def _link_sandbox_helper(cache_dir: Path) -> None:
    """``codex-linux-sandbox`` beside the launcher: the native binary under that name (codex dispatches on argv[0]).

    With a system ``bwrap`` installed, codex 0.169.0's workspace-write sandbox execs ``codex-linux-sandbox``
    from PATH; codex creates that alias itself under CODEX_HOME, but refuses to when CODEX_HOME is under
    /tmp (pytest's tmp_path): "Refusing to create helper binaries under temporary dir". Every command
    then failed with ``bwrap: execvp codex-linux-sandbox: No such file or directory``.
    """
    native = next(iter(sorted((cache_dir / "node_modules" / "@openai").glob("codex-*/vendor/*/bin/codex"))), None)
    link = _launcher(cache_dir).parent / "codex-linux-sandbox"
    if native is not None and not link.exists():
        scratch = link.with_name(f".codex-linux-sandbox.{os.getpid()}")
        scratch.unlink(missing_ok=True)
        scratch.symlink_to(native.resolve())
        os.replace(scratch, link)


def codex_config_toml(
    base_url: str,
    env_key: str = "CLONE_FAKE_MODEL_KEY",
    model: str = "fake-model",
    *,
    provider_id: str = "clone_fake",
    request_max_retries: int = 0,
    stream_max_retries: int = 0,
    stream_idle_timeout_ms: int = 30_000,
    model_catalog_path: str | Path | None = None,
    exclude_tmp_from_sandbox: bool = False,
) -> str:
    """The text :func:`write_codex_home` writes (exposed for tests and for documentation)."""

    def q(value: str) -> str:  # TOML basic string
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    catalog = ""
    if model_catalog_path is not None:
        catalog = (
            "# Without a catalog entry for the model, every run starts with an item of type \"error\":\n"
            "# \"Model metadata for `<model>` not found. Defaulting to fallback metadata\".\n"
            f"model_catalog_json = {q(str(model_catalog_path))}\n"
        )
    sandbox = ""
    if exclude_tmp_from_sandbox:
        sandbox = (
            "\n# workspace-write otherwise also lets commands write /tmp and $TMPDIR (pytest's tmp_path).\n"
            "[sandbox_workspace_write]\nexclude_slash_tmp = true\nexclude_tmpdir_env_var = true\n"
        )
    return f"""\
# Written by tests/fakes/codex_cli.py for codex {CODEX_VERSION}: model traffic goes to a local fake server.
model = {q(model)}
model_provider = {q(provider_id)}
# No update check at start-up (exec made no look-up without it in 0.169.0; kept for safety).
check_for_update_on_startup = false
{catalog}
[model_providers.{provider_id}]
name = "Clone fake model server"
base_url = {q(base_url)}
env_key = {q(env_key)}
wire_api = "responses"
# codex retries errors request_max_retries times inside stream_max_retries + 1 attempts (defaults 4 and 5:
# 30 POSTs and ~25 s of back-off before the turn fails). Tests want a failure to show at once.
request_max_retries = {int(request_max_retries)}
stream_max_retries = {int(stream_max_retries)}
stream_idle_timeout_ms = {int(stream_idle_timeout_ms)}

[analytics]
enabled = false

[features]
# Plugin discovery runs `git clone https://github.com/openai/plugins.git` at start-up.
plugins = false
# Otherwise a refused connection is retried forever.
unbounded_connection_retries = false
{sandbox}"""


def fake_model_catalog(model: str = "fake-model") -> dict[str, object]:
    """A one-model catalog (``model_catalog_json``) describing ``model`` like codex's fallback metadata.

    Fields found by trial against codex 0.169.0's parser (it names each missing field). ``shell_type =
    unified_exec`` keeps the ``exec_command`` tool; the tool list sent to the model is the same as with the
    fallback metadata, only the (much shorter) base instructions differ. It replaces the built-in catalog, so
    only ``model`` is known to that codex home.
    """
    return {
        "models": [
            {
                "slug": model,
                "display_name": f"{model} (Clone tests)",
                "supported_reasoning_levels": [],
                "shell_type": "unified_exec",
                "visibility": "list",
                "supported_in_api": True,
                "priority": 1,
                "support_verbosity": False,
                "truncation_policy": {"mode": "tokens", "limit": 10000},
                "experimental_supported_tools": [],
                "base_instructions": "You are a scripted fake model used in Clone's tests.",
            }
        ]
    }


def write_codex_home(
    codex_home: Path,
    base_url: str,
    env_key: str = "CLONE_FAKE_MODEL_KEY",
    model: str = "fake-model",
    *,
    model_catalog: bool = True,
    **options: Any,
) -> None:
    """Create ``codex_home`` and write its ``config.toml`` for an offline run against ``base_url``.

    ``base_url`` is the provider's base URL including ``/v1`` (``FakeModelServer.base_url``); codex POSTs
    ``<base_url>/responses``. The API key is read by codex from the environment variable ``env_key`` (any
    non-empty value). With ``model_catalog`` (default) it also writes ``fake_model_catalog.json`` describing
    ``model`` (see :func:`fake_model_catalog`), so runs do not start with a "model metadata not found" error
    item. Other keyword ``options`` go to :func:`codex_config_toml` (``request_max_retries``,
    ``stream_max_retries``, ``stream_idle_timeout_ms``, ``provider_id``, ``exclude_tmp_from_sandbox``).
    """
    codex_home = Path(codex_home)
    codex_home.mkdir(parents=True, exist_ok=True)
    if model_catalog:
        catalog_path = codex_home / "fake_model_catalog.json"
        catalog_path.write_text(json.dumps(fake_model_catalog(model), indent=2) + "\n")
        options.setdefault("model_catalog_path", catalog_path.resolve())
    (codex_home / "config.toml").write_text(codex_config_toml(base_url, env_key, model, **options))
