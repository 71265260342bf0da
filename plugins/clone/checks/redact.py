"""What looks like a secret: one pattern set, used to mask logs and to scan diffs before a push.

The provider rules follow the documented token formats (GitHub, AWS, OpenAI, Anthropic, Slack,
Google, Stripe) and the PEM headers of private keys. Masking is deliberately loose (a masked
placeholder costs nothing); detection (:func:`find_secrets`) blocks pushes, so it also asks that
the value look random and not like a documented example (``ghp_xxxx…``, ``AKIAIOSFODNN7EXAMPLE``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from collections.abc import Sequence

MASK = "***"


@dataclasses.dataclass(frozen=True)
class SecretRule:
    """One kind of credential: its name, its pattern, and how much of it is safe to show."""

    name: str
    regex: re.Pattern[str]  # the secret is group "secret" when the pattern has one, else the match
    shown: int = 0          # leading characters that are a fixed, public prefix (``ghp_``)

    def secret(self, match: re.Match[str]) -> str:
        return match.group("secret") if "secret" in self.regex.groupindex else match.group(0)


SECRET_RULES = (
    SecretRule("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"), 4),
    SecretRule("GitHub fine-grained token", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{40,}"), 11),
    SecretRule("Anthropic API key", re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,}"), 7),
    SecretRule("OpenAI API key", re.compile(r"\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"), 3),
    SecretRule("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), 4),
    SecretRule("AWS secret access key", re.compile(
        r"(?i)aws_?secret_?(?:access_?)?key[\"']?\s*[:=]{1,2}\s*[\"']?"
        r"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])")),
    SecretRule("Slack token", re.compile(r"\bxox[abeoprs]-[A-Za-z0-9-]{10,}"), 5),
    SecretRule("Slack webhook", re.compile(
        r"hooks\.slack\.com/services/(?P<secret>T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{16,})")),
    SecretRule("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), 4),
    SecretRule("Stripe live key", re.compile(r"\b[rs]k_live_[A-Za-z0-9]{20,}"), 8),
)
#: Masked only: too broad to block a push on.
_MASK_ONLY = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"),
    re.compile(r"(?i)(?<=[\"' :=])(?:bearer|token)\s+[A-Za-z0-9._~+/-]{20,}=*"),
)
#: Every pattern :func:`mask_secrets` replaces (kept for callers that want the raw list).
SECRET_PATTERNS = tuple(rule.regex for rule in SECRET_RULES) + _MASK_ONLY


def mask_secrets(text: str, extra: tuple[str, ...] = ()) -> str:
    """Replace every secret-looking span (and each literal in ``extra``) with ``***``."""
    for literal in extra:
        if literal and len(literal) >= 4:
            text = text.replace(literal, MASK)
    for rule in SECRET_RULES:
        if "secret" in rule.regex.groupindex:
            text = rule.regex.sub(lambda m: m.group(0).replace(m.group("secret"), MASK), text)
        else:
            text = rule.regex.sub(MASK, text)
    for pattern in _MASK_ONLY:
        text = pattern.sub(MASK, text)
    return text


# -- detection -------------------------------------------------------------------------------
_PRIVATE_KEY_HEADER = re.compile(
    r"-----BEGIN ((?:RSA |DSA |EC |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY)(?: BLOCK)?-----")
_KEY_MATERIAL = re.compile(r"[A-Za-z0-9+/]{40,}")
_KEY_LOOKAHEAD_LINES = 4
#: A credential-named variable, key or option assigned a literal (quoted, or bare up to the end of the line).
_ASSIGNMENT = re.compile(
    r"""(?ix)
    (?:password|passwd|secret|token|api[_-]?key|secret[_-]?key|access[_-]?key|private[_-]?key
       |auth[_-]?key|credentials?)
    (?![a-z0-9_])                                  # the name ends here: not password_hash, max_tokens
    ["']?\s*(?::\s*[a-z_][\w\[\]., |]*?\s*(?==))?  # a closing quote, a type annotation
    (?:=>|:=|==|=|:)\s*
    (?:[rbuf]{0,2}(?P<q>["'`])(?P<quoted>[^"'`\s]{12,200})(?P=q)
      |(?P<bare>[^\s"'`#,;(){}\[\]<>$]{12,200})(?=\s*(?:[#;].*)?$))
    """)
_URL_CREDENTIALS = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:(?P<secret>[^/\s:@'\"]{6,})@")
_PLACEHOLDER_WORDS = ("xxxx", "example", "changeme", "change_me", "your", "placeholder", "dummy", "sample",
                      "fake", "redacted", "password", "secret", "token", "test", "mock", "replace", "insert",
                      "****", "...", "<", ">", "${", "{{", "%s", "%(", "$(", "0000", "1234567", "abcdef")
#: Words and numbers joined by separators: identifiers, env var names, kebab-case, dotted paths.
_WORDISH = re.compile(r"(?:[A-Za-z]+\d{0,2}|\d{1,4})(?:[-_./:]+(?:[A-Za-z]+\d{0,2}|\d{1,4}))*")


@dataclasses.dataclass(frozen=True)
class SecretHit:
    """A secret found on one line: what kind, and a preview that does not reveal it."""

    kind: str
    line_index: int  # index into the lines handed to :func:`find_secrets`
    preview: str


def entropy(value: str) -> float:
    """Shannon entropy of ``value`` in bits per character."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values()) if value else 0.0


def is_placeholder(value: str) -> bool:
    """Whether ``value`` reads like an example: ``xxxx``, ``EXAMPLE``, ``<your-key>``, ``abcdef…``."""
    lowered = value.lower()
    return any(word in lowered for word in _PLACEHOLDER_WORDS)


def looks_random(value: str) -> bool:
    """Whether ``value`` looks like generated key material rather than a word, a name or an example."""
    if len(value) < 12 or is_placeholder(value) or _WORDISH.fullmatch(value) or len(set(value)) < 8:
        return False
    has_letter = any(c.isalpha() for c in value)
    has_digit = any(c.isdigit() for c in value)
    return has_letter and has_digit and entropy(value) >= 3.0


def _credible(rule: SecretRule, secret: str) -> bool:
    body = secret[rule.shown:]
    if rule.name == "AWS access key id":  # 16 upper-case alphanumerics, digits not guaranteed
        return not is_placeholder(body) and len(set(body)) >= 8
    return looks_random(body)


def find_secrets(lines: Sequence[str], *, assignments: bool = True,
                 bare_values: bool = True) -> list[SecretHit]:
    """Secrets in ``lines`` (consecutive lines of one file, e.g. the lines a diff adds).

    Provider rules and private keys are always looked for; a private key header counts only when
    key material follows it within a few lines. With ``assignments``, so are credential-named
    assignments of a random-looking literal (``db_password = "..."``) and passwords in URLs;
    ``bare_values`` adds unquoted values that run to the end of the line (``.env``, YAML, INI),
    which in source code are references (``key = settings.KEY``) rather than literals.
    """
    hits: list[SecretHit] = []
    for index, line in enumerate(lines):
        found = [SecretHit(rule.name, index, f"{rule.secret(m)[:rule.shown]}****")
                 for rule in SECRET_RULES for m in rule.regex.finditer(line)
                 if _credible(rule, rule.secret(m))]
        header = _PRIVATE_KEY_HEADER.search(line)
        if header and any(_KEY_MATERIAL.search(text)
                          for text in (line[header.end():], *lines[index + 1:index + _KEY_LOOKAHEAD_LINES])):
            kind = f"{header.group(1).removesuffix('PRIVATE KEY')}private key"  # "RSA private key"
            found.append(SecretHit(kind, index, header.group(0)))
        if assignments and not found:
            found += _assignment_hits(line, index, bare_values)
        hits += found
    return hits


def _assignment_hits(line: str, index: int, bare_values: bool) -> list[SecretHit]:
    hits = []
    for match in _ASSIGNMENT.finditer(line):
        value = match.group("quoted") or (match.group("bare") if bare_values else None)
        if value and looks_random(value):
            hits.append(SecretHit("credential assignment", index, f"{_name_at(line, match.start())} = ****"))
    for match in _URL_CREDENTIALS.finditer(line):
        if looks_random(match.group("secret")):
            scheme = match.group(0).split(":", 1)[0]
            hits.append(SecretHit("password in a URL", index, f"{scheme}://...:****@"))
    return hits


def _name_at(line: str, keyword_start: int) -> str:
    """The whole identifier around the keyword: ``db_password`` for ``db_password = ...``."""
    start = keyword_start
    while start > 0 and (line[start - 1].isalnum() or line[start - 1] in "_.-"):
        start -= 1
    return re.match(r"[\w.-]*", line[start:]).group(0) or "value"
