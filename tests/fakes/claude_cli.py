"""Install the real Claude Code CLI for tests and point it at a local fake Messages API.

* ``install_claude(cache_dir)`` installs ``@anthropic-ai/claude-code@2.1.331`` from the npm registry (once;
  file-locked so that parallel pytest processes do not race) and returns the ``claude`` executable.
* ``claude_env(config_dir, base_url)`` is the environment that sends every model request to ``base_url``
  (see ``tests/fakes/anthropic_server.py``), keeps the CLI away from the network and from the user's own
  configuration.

Measured with Claude Code 2.1.331 (npm, linux-x64):

* The npm package is a wrapper; the real program is a ~400 MB native (Bun-compiled) executable that comes
  from the platform package (``@anthropic-ai/claude-code-linux-x64``) in the same ``npm install``; the
  wrapper's postinstall (``install.cjs``) hard-links it over ``bin/claude.exe``. Nothing else is downloaded.
  The wrapper declares ``engines.node >= 22`` but only its postinstall script runs under Node (Node 20 works;
  npm prints an ``EBADENGINE`` warning). About 5 s from the registry.
* ``claude --version`` prints ``2.1.331 (Claude Code)``; start-up needs no login when ``ANTHROPIC_API_KEY``
  is set (any value). Without a key and without a login, a run fails at once with ``Not logged in``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.fakes.npm_install import install_package, run_logged

__all__ = [
    "CLAUDE_NPM_SPEC",
    "CLAUDE_VERSION",
    "ClaudeInstallError",
    "claude_env",
    "default_cache_dir",
    "install_claude",
]

CLAUDE_VERSION = "2.1.331"
CLAUDE_NPM_SPEC = f"@anthropic-ai/claude-code@{CLAUDE_VERSION}"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
FAKE_API_KEY = "sk-ant-clone-fake-key"


class ClaudeInstallError(RuntimeError):
    """``npm install`` of the Claude Code CLI failed (the message carries npm's output)."""


def default_cache_dir() -> Path:
    """``$CLONE_TEST_CACHE/claude-2.1.331``, else ``<project root>/.cache/test-tools/claude-2.1.331``."""
    root = os.environ.get("CLONE_TEST_CACHE") or str(PROJECT_ROOT / ".cache" / "test-tools")
    return Path(root) / f"claude-{CLAUDE_VERSION}"


def _launcher(cache_dir: Path) -> Path:
    return cache_dir / "node_modules" / ".bin" / "claude"


def _package_dir(cache_dir: Path) -> Path:
    return cache_dir / "node_modules" / "@anthropic-ai" / "claude-code"


def _version_of(launcher: Path) -> str | None:
    """What ``launcher --version`` says (``None`` if it does not run)."""
    if not launcher.exists():
        return None
    try:
        with tempfile.TemporaryDirectory(prefix="claude-version-") as home:
            env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": home, "CLAUDE_CONFIG_DIR": home,
                   "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
            proc = subprocess.run([str(launcher), "--version"], stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=60, env=env)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.split()[0] if proc.returncode == 0 and proc.stdout.strip() else None


def _is_installed(cache_dir: Path) -> bool:
    # Running it is the only sure check: without its postinstall, bin/claude.exe is a placeholder stub.
    return _version_of(_launcher(cache_dir)) == CLAUDE_VERSION


def install_claude(cache_dir: Path | None = None) -> Path:
    """Install ``@anthropic-ai/claude-code@2.1.331`` into ``cache_dir`` unless it is there; return ``claude``.

    ``cache_dir`` defaults to :func:`default_cache_dir`. Idempotent and safe to call from several processes
    at once (an ``fcntl`` lock on ``<parent>/.<name>.lock``). If npm skipped the package's postinstall (for
    example ``ignore-scripts`` in an npmrc), it is run once by hand. Raises :class:`ClaudeInstallError` with
    npm's output when npm is missing, the install fails, or the result does not report the pinned version.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()

    def repair(folder: Path) -> str:
        """npm skipped the postinstall (e.g. ignore-scripts): put the native binary in place ourselves."""
        postinstall, node = _package_dir(folder) / "install.cjs", shutil.which("node")
        if not postinstall.exists() or node is None:
            return ""
        post = run_logged([node, "install.cjs"], ClaudeInstallError, cwd=_package_dir(folder))
        return f"\n$ node install.cjs (exit {post.returncode})\n{post.stdout}"

    install_package(CLAUDE_NPM_SPEC, cache_dir, is_installed=_is_installed, error=ClaudeInstallError,
                    expected=f"{_launcher(cache_dir)} to report version {CLAUDE_VERSION}", repair=repair)
    return _launcher(cache_dir)


def claude_env(config_dir: Path, base_url: str, api_key: str = FAKE_API_KEY, *,
               max_retries: int = 0) -> dict[str, str]:
    """Environment variables for an offline ``claude -p`` run against ``base_url`` (a fake server).

    * ``ANTHROPIC_BASE_URL`` (no ``/v1``: the CLI appends ``/v1/messages``) and ``ANTHROPIC_API_KEY`` (any
      value; sent as ``x-api-key``; it also makes the CLI skip any login).
    * ``CLAUDE_CONFIG_DIR``: where it keeps ``.claude.json``, settings, sessions, backups and plugin state
      instead of ``~/.claude`` and ``~/.claude.json`` (checked: nothing is written to ``HOME`` with it set).
      ``config_dir`` is created.
    * ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`` is what keeps it offline: without it 2.1.331 sends
      ``HEAD /api/hello`` to the base URL, resolves ``api.anthropic.com`` (telemetry; the events are then
      queued under ``<config>/telemetry/``). With it, ``strace -f -e connect`` showed one TCP connection per
      model request to the base URL and nothing else (no DNS). ``DISABLE_TELEMETRY``,
      ``DISABLE_ERROR_REPORTING`` and ``DISABLE_AUTOUPDATER`` are implied by it and set too, for clarity.
    * ``CLAUDE_CODE_MAX_RETRIES``: 5xx/429/529 answers are retried (default 10 times, exponential back-off);
      tests want a failure at once.
    """
    config_dir = Path(config_dir)
    config_dir.mkdir(parents=True, exist_ok=True)
    return {
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": api_key,
        "CLAUDE_CONFIG_DIR": str(config_dir),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_MAX_RETRIES": str(int(max_retries)),
    }
