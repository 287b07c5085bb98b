"""django-migration-guard: zero-downtime safety for Django migrations on PostgreSQL."""

__version__ = "0.1.0"
