"""Notifications: the events a person must hear about (a chain failed, an incident, a stall, a budget
reached, a BLOCKED idea), rate-limited into digests and sent through Airflow notifiers (SMTP, Slack).
May import only ``clone.errors`` and ``clone.config``.
"""
