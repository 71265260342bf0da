"""What decides whether work may be pushed: the repo's environment set-up (repo_setup), its checks
and their verdicts (verify), the commit guards (guards) and secret redaction (redact).
May import ``clone.config``, ``clone.util``, ``clone.errors`` and ``clone.memory`` (the guards know the
memory archive's folder).
"""
