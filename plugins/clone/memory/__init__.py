"""What a repository remembers and what the agent is told: the memory documents (docs), their
compaction and archive (compaction), the core policy (core_policy), the backlog (backlog) and the
prompt built from them (prompts). May import ``clone.config``, ``clone.util`` and ``clone.errors``.
"""
