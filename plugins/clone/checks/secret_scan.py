"""Secrets in added lines, found by detect-secrets (Yelp's maintained scanner) on top of Clone's own rules.

Only detect-secrets' provider detectors are used (AWS, GitHub, GitLab, Slack, Stripe, private keys, JWTs,
npm, PyPI, OpenAI, ...): its entropy and keyword plugins flag every hash and fixture. A NUL byte does not
hide a file: binary-looking content is split at NULs and each piece scanned as text.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence

#: detect-secrets plugins left out: noisy on lock files, hashes and fixtures (Clone's rules cover assignments).
_NOISY = frozenset({"Base64HighEntropyString", "HexHighEntropyString", "KeywordDetector", "IPPublicDetector"})


@functools.lru_cache(maxsize=1)
def _plugins() -> tuple[str, ...]:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    return tuple(sorted(cls.__name__ for cls in get_mapping_from_secret_type_to_class().values()
                        if cls.__name__ not in _NOISY))


def text_pieces(line: str) -> list[str]:
    """``line`` split at NUL bytes (binary content), empty pieces dropped."""
    return [piece for piece in line.split("\x00") if piece.strip()]


def scan_lines(lines: Sequence[str]) -> Iterator[tuple[int, str]]:
    """(index in ``lines``, kind of secret) for each line detect-secrets flags."""
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import transient_settings

    with transient_settings({"plugins_used": [{"name": name} for name in _plugins()]}):
        for index, line in enumerate(lines):
            kinds = {secret.type for piece in text_pieces(line) for secret in scan_line(piece[:10_000])}
            for kind in sorted(kinds):
                yield index, kind
