"""Cron health monitoring: history in SQLite, alerts on change, Nagios and Prometheus export."""
