"""State shared by runs: per-repo leases with holder liveness (lease), stall counters (stall) and
the run's token ledger (budget). May import ``clone.config``, ``clone.util`` and ``clone.errors``.
"""
