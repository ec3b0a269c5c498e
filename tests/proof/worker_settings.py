"""Settings of the processes the proof suites start: ``qcluster`` workers, the booking
driver and the WSGI server.

They share the database of the test that starts them (its name in
``BVC_PROOF_DB_NAME``), its encryption keys (``BVC_PROOF_KEYS``) and its fake provider
(``BVC_PROOF_FAKE_URL``); django-q2 works a Redis queue of its own
(``BVC_PROOF_Q_NAME``) instead of running jobs inline, or the database queue with
``BVC_PROOF_BROKER=orm``.
"""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES

DATABASES["default"]["NAME"] = os.environ["BVC_PROOF_DB_NAME"]

ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

Q_CLUSTER = {
    "name": os.environ.get("BVC_PROOF_Q_NAME", "bvc-proof"),
    "workers": int(os.environ.get("BVC_PROOF_WORKERS", "2")),
    "timeout": 60,
    "retry": 120,
    "catch_up": False,
}
if os.environ.get("BVC_PROOF_BROKER", "redis") == "orm":
    # Jobs wait in the database; nothing works them (the web server test needs no worker).
    Q_CLUSTER["orm"] = "default"
else:
    Q_CLUSTER["redis"] = {
        "host": "127.0.0.1",
        "port": int(os.environ.get("BVC_REDIS_PORT", "6379")),
        "db": 0,
    }

_providers = {}
if os.environ.get("BVC_PROOF_FAKE_URL"):
    _providers["flaky"] = {
        "CLASS": "tests.proof.flaky.FlakyProvider",
        "API_BASE_URL": os.environ["BVC_PROOF_FAKE_URL"],
        "HTTP_TIMEOUT": (2.0, float(os.environ.get("BVC_PROOF_READ_TIMEOUT", "0.3"))),
    }

WAGTAIL_BOOKINGS_VC = {
    "DEFAULT_CURRENCY": "EUR",
    "ENCRYPTION_KEYS": os.environ["BVC_PROOF_KEYS"].split(","),
    "PROVIDERS": _providers,
    "HTTP_TRUST_ENV": False,
}
