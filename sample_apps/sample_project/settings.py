"""Settings of the django-migration-guard sample project.

The project is a fixture: ``migration_guard`` audits its migrations without
ever connecting to the database configured here, so that database does not
have to exist. Set ``DATABASE_URL`` (``postgresql://user:password@host:port/name``,
``?host=/path/to/socket/dir`` is honoured) to run the migrations for real.
"""

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent

# Development-only key: this project is never deployed.
SECRET_KEY = "django-insecure-sample-apps-dev-key-not-for-production"

DEBUG = os.environ.get("DEBUG", "1").lower() in {"1", "true", "yes", "on"}

ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "migration_guard",
    "accounts",
    "shop",
    "blog",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "sample_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database_from_url(url):
    """Translate a ``postgresql://`` URL into a Django ``DATABASES`` entry."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = unquote(parts.hostname or "") or query.get("host", [""])[0]
    config = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "sample_apps",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(parts.port or query.get("port", [""])[0]),
    }
    options = {key: values[-1] for key, values in query.items() if key not in {"host", "port"}}
    if options:
        config["OPTIONS"] = options
    return config


if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": _database_from_url(os.environ["DATABASE_URL"])}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "sample_apps",
            "HOST": "localhost",
        }
    }
# A second database: the analytics app's page views (sample_project/routers.py).
if os.environ.get("ANALYTICS_DATABASE_URL"):
    DATABASES["analytics"] = _database_from_url(os.environ["ANALYTICS_DATABASE_URL"])
else:
    DATABASES["analytics"] = {**DATABASES["default"], "NAME": "sample_apps_analytics"}
DATABASE_ROUTERS = ["sample_project.routers.AnalyticsRouter"]

AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-migration-guard configuration (docs/usage.md): rules to disable, severity
# overrides, migrations to exclude, production's PostgreSQL version...
# lock_timeout is applied to `manage.py migrate`: a migration that waits for a lock
# fails after 5 s instead of queueing every query on the table behind it.
MIGRATION_GUARD = {"lock_timeout": "5s"}
