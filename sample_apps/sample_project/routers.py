"""The sample project's database router: the analytics app lives in its own database.

``DATABASES["analytics"]`` holds the analytics app's tables and nothing else;
every other app stays in ``default``. ``manage.py migrate --database analytics``
applies the analytics migrations there, and ``migrate`` (default) skips them.
"""

ANALYTICS_APPS = frozenset({"analytics"})


class AnalyticsRouter:
    def _db(self, model, **hints):
        return "analytics" if model._meta.app_label in ANALYTICS_APPS else None

    db_for_read = _db
    db_for_write = _db

    def allow_relation(self, obj1, obj2, **hints):
        if (obj1._meta.app_label in ANALYTICS_APPS) != (obj2._meta.app_label in ANALYTICS_APPS):
            return False
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label in ANALYTICS_APPS:
            return db == "analytics"
        return db == "default"
