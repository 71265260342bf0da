"""State shared by runs: per-repo leases with holder liveness (lease), stall counters (stall), the run's
token ledger (budget) and the run's incident list (incident_log). May import ``clone.config``,
``clone.util`` and ``clone.errors``.
"""
