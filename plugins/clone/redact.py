"""Masking things that look like secrets in text we log or hand to an agent."""

from __future__ import annotations

import re

SECRET_PATTERNS = (
    re.compile(r"gh[pousr]_[A-Za-z0-9]{30,}"),                       # GitHub tokens
    re.compile(r"github_pat_[A-Za-z0-9_]{40,}"),                    # GitHub fine-grained PATs
    re.compile(r"sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"),             # OpenAI / Anthropic keys
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),                    # AWS access key ids
    re.compile(r"xox[abprs]-[A-Za-z0-9-]{10,}"),                     # Slack tokens
    re.compile(r"AIza[0-9A-Za-z_-]{35}"),                            # Google API keys
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"),
    re.compile(r"(?i)(?<=[\"' :=])(?:bearer|token)\s+[A-Za-z0-9._~+/-]{20,}=*"),
)
MASK = "***"


def mask_secrets(text: str, extra: tuple[str, ...] = ()) -> str:
    """Replace every secret-looking span (and each literal in ``extra``) with ``***``."""
    for literal in extra:
        if literal and len(literal) >= 4:
            text = text.replace(literal, MASK)
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(MASK, text)
    return text
