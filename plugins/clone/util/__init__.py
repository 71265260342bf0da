"""Plumbing every stage uses: the one subprocess runner with timeouts and process-group reaping
(runner), the one git module (git) and crash-safe YAML files (yamlio). Imports only ``clone.config``,
``clone.errors`` and the standard library.
"""
