"""Sample Django project used as the fixture of django-migration-guard's tests and docs."""
