"""Benchmarks and load generators for django-migration-guard (not shipped in the wheel)."""
