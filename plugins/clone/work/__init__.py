"""One repository's work: the workspace clone (workspace), an agent pass with its evidence and
commit (passes) and pushing the result (push).
May import every package but ``clone.workflow``, ``clone.operators`` and ``clone.triggers``.
"""
