"""Observe what migrations really do on PostgreSQL (locks, rewrites, scans)."""
