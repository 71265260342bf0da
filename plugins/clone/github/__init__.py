"""GitHub: the connection (connection), PyGithub through the provider's GithubHook for one-shot calls
(client, repos, pulls, listing), the CI poll's small conditional-request clients (api, async_client)
and the reading of CI results (ci, ci_suites). May import ``clone.checks`` (redaction) and ``clone.errors``.
"""
