"""One repository's work: the workspace clone (workspace), the one agent session every step runs the agent
through (session) and its commit rule (commits), a pass with its verification (passes, verification), a CI
fix attempt (autofix), the typed chain result handed between tasks (chain), the push step (publish) and
pushing with incidents recorded as the push mode allows (push).
May import every package but ``clone.workflow``, ``clone.operators`` and ``clone.triggers``.
"""
