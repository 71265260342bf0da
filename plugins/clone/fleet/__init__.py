"""The fleet: the repos.yaml file and its entries (repos_file), discovery of recently active
checkouts (discover) and the fleet report read from the remotes (report).
May import ``clone.config``, ``clone.util`` and ``clone.errors``.
"""
