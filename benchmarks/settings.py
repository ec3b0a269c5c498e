"""Settings of a benchmark run: the example site on a throwaway database.

:mod:`benchmarks.run` sets the environment before Django starts, for itself and for the
``qcluster`` worker it runs beside it.
"""

from __future__ import annotations

import importlib.util
import os

import django

from example_site.settings.base import *  # noqa: F403
from example_site.settings.base import INSTALLED_APPS

if os.environ["BVC_BENCH_DATABASE"] == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ["BVC_BENCH_DB_NAME"],
            "USER": os.environ.get("BVC_PG_USER", "postgres"),
            "HOST": os.environ.get("BVC_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("BVC_PG_PORT", "5432"),
        }
    }
    INSTALLED_APPS = [*INSTALLED_APPS, "django.contrib.postgres"]
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ["BVC_BENCH_DB_NAME"],
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    }

# django-appointment, the app the run compares with (benchmarks.peer), when it is installed.
# Last, so that its templates and translations never shadow the site's.
if importlib.util.find_spec("appointment") is not None:
    INSTALLED_APPS = [*INSTALLED_APPS, "appointment"]
    APPOINTMENT_WEBSITE_NAME = "Riverside Wellbeing Studio"

SECRET_KEY = os.environ["BVC_BENCH_SECRET_KEY"]
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
WAGTAILADMIN_BASE_URL = "http://testserver"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

Q_CLUSTER = {
    "name": os.environ["BVC_BENCH_Q_NAME"],
    "workers": 1,
    "timeout": 60,
    "retry": 120,
    "catch_up": False,
    # As docs/workers.md recommends for a busy site: failed tasks only.
    "save_limit": -1,
    "log_level": "WARNING",
}
if os.environ.get("BVC_BENCH_BROKER") == "redis":
    Q_CLUSTER["redis"] = {
        "host": "127.0.0.1",
        "port": int(os.environ.get("BVC_REDIS_PORT", "6379")),
        "db": 0,
    }
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 0.05

WAGTAIL_BOOKINGS_VC = {
    "DEFAULT_CURRENCY": "EUR",
    "ENCRYPTION_KEYS": [os.environ["BVC_BENCH_KEY"]],
    "PROVIDERS": {
        "bench": {
            "CLASS": "tests.proof.flaky.FlakyProvider",
            "API_BASE_URL": os.environ["BVC_BENCH_FAKE_URL"],
            "HTTP_TIMEOUT": (2.0, 10.0),
        }
    },
    "HTTP_TRUST_ENV": False,
}

if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
else:
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"handlers": [], "level": "WARNING"},
    "loggers": {"django-q": {"level": "WARNING"}},
}
