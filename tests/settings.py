"""Test settings: the example site on SQLite, or on PostgreSQL with BVC_DATABASE=postgres."""

from __future__ import annotations

import os

import django
from cryptography.fernet import Fernet

from example_site.settings.base import *  # noqa: F403
from example_site.settings.base import INSTALLED_APPS

if os.environ.get("BVC_DATABASE") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("BVC_PG_NAME", "wagtail_bookings_vc"),
            "USER": os.environ.get("BVC_PG_USER", "postgres"),
            "HOST": os.environ.get("BVC_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("BVC_PG_PORT", "5432"),
            "TEST": {"NAME": os.environ.get("BVC_PG_TEST_NAME", "test_wagtail_bookings_vc")},
        }
    }
    # Django 6 checks that Wagtail's search index can use PostgreSQL's features.
    INSTALLED_APPS = [*INSTALLED_APPS, "django.contrib.postgres"]
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("BVC_SQLITE_NAME", ":memory:"),
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
            "TEST": {"NAME": os.environ.get("BVC_SQLITE_TEST_NAME")},
        }
    }

DEBUG = False
SECRET_KEY = "tests-only"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
WAGTAILADMIN_BASE_URL = "http://testserver"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# A fresh key per run: nothing secret is committed, and every test encrypts for real.
WAGTAIL_BOOKINGS_VC = {
    "DEFAULT_CURRENCY": "EUR",
    "ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
}

# Jobs run inline in tests: the same code path as a worker, without a cluster.
Q_CLUSTER = {"name": "tests", "orm": "default", "sync": True, "timeout": 30, "retry": 60}

# Django 6.1 configures email through MAILERS (EMAIL_BACKEND is deprecated there).
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
