"""Production settings of the example site: ``manage.py check --deploy`` passes with these.

Everything secret or site-specific comes from the environment:

``DJANGO_SECRET_KEY`` (required)
    At least 50 random characters.
``DJANGO_ALLOWED_HOSTS`` (required)
    Host names, separated by commas (``bookings.example.com,www.example.com``).
``WAGTAIL_BOOKINGS_VC_ENCRYPTION_KEYS`` (required)
    Fernet keys for the stored provider credentials, newest first, separated by commas.
``DATABASE_NAME``, ``DATABASE_USER``, ``DATABASE_PASSWORD``, ``DATABASE_HOST``, ``DATABASE_PORT``
    The PostgreSQL database (defaults: ``wagtail_bookings_vc``, ``postgres``, none,
    ``127.0.0.1``, ``5432``).
``REDIS_URL``
    The Redis server of the task queue (django-q2's broker) and of the cache, for
    example ``redis://127.0.0.1:6379/0`` (the default).
``WAGTAILADMIN_BASE_URL``
    The site's public https:// address, used in emails.
``EMAIL_HOST``, ``EMAIL_PORT``, ``EMAIL_HOST_USER``, ``EMAIL_HOST_PASSWORD``
    The SMTP server (STARTTLS).
``DJANGO_HSTS_PRELOAD``
    ``0`` to leave the site out of the browsers' HSTS preload lists.

The site is served over HTTPS only, behind a proxy that sets ``X-Forwarded-Proto``.
"""

from __future__ import annotations

import os

import django
from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import INSTALLED_APPS, WAGTAIL_BOOKINGS_VC


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"Set the {name} environment variable.")
    return value


def _listed(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = False
SECRET_KEY = _required("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = _listed(_required("DJANGO_ALLOWED_HOSTS"))

# HTTPS only: redirect plain HTTP, tell browsers to stay on HTTPS for a year, and send
# cookies over HTTPS only.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = True
SECURE_HSTS_SECONDS = 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = os.environ.get("DJANGO_HSTS_PRELOAD", "1") != "0"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = [f"https://{host.lstrip('.')}" for host in ALLOWED_HOSTS]
X_FRAME_OPTIONS = "DENY"

# PostgreSQL. django.contrib.postgres lets Wagtail's search index use its features
# (Django 6 checks for it).
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("DATABASE_NAME", "wagtail_bookings_vc"),
        "USER": os.environ.get("DATABASE_USER", "postgres"),
        "PASSWORD": os.environ.get("DATABASE_PASSWORD", ""),
        "HOST": os.environ.get("DATABASE_HOST", "127.0.0.1"),
        "PORT": os.environ.get("DATABASE_PORT", "5432"),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
}
INSTALLED_APPS = [*INSTALLED_APPS, "django.contrib.postgres"]
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

# The task queue on Redis: meeting jobs, emails and the periodic sweep. Several
# `manage.py qcluster` processes may work the same queue.
Q_CLUSTER = {
    "name": "wagtail_bookings_vc",
    "workers": int(os.environ.get("Q_WORKERS", "2")),
    "timeout": 60,
    "retry": 120,
    "catch_up": False,
    # Keep failed tasks only: the app records each job's outcome in its own tables, and
    # django-q2 reads every kept success after each task to prune them.
    "save_limit": -1,
    "redis": REDIS_URL,
}

# A cache shared by every server process: the join link's guessing throttle counts here.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "wagtail_bookings_vc",
    }
}

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage",
    },
}

WAGTAILADMIN_BASE_URL = os.environ.get("WAGTAILADMIN_BASE_URL", f"https://{ALLOWED_HOSTS[0]}")

WAGTAIL_BOOKINGS_VC = {
    **WAGTAIL_BOOKINGS_VC,
    "ENCRYPTION_KEYS": _listed(_required("WAGTAIL_BOOKINGS_VC_ENCRYPTION_KEYS")),
}

_smtp = {
    "host": os.environ.get("EMAIL_HOST", "localhost"),
    "port": int(os.environ.get("EMAIL_PORT", "587")),
    "username": os.environ.get("EMAIL_HOST_USER", ""),
    "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
    "use_tls": True,
    "timeout": 30,
}
# Django 6.1 configures email through MAILERS (EMAIL_* is deprecated there).
if django.VERSION >= (6, 1):
    MAILERS = {
        "default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend", "OPTIONS": _smtp}
    }
else:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST, EMAIL_PORT = _smtp["host"], _smtp["port"]
    EMAIL_HOST_USER, EMAIL_HOST_PASSWORD = _smtp["username"], _smtp["password"]
    EMAIL_USE_TLS, EMAIL_TIMEOUT = True, _smtp["timeout"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"wagtail_bookings_vc": {"level": "INFO"}},
}
