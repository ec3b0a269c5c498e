"""``manage.py check --deploy`` is clean for the example site's production settings."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def deploy_check(**overrides: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "BVC_", "DATABASE_", "WAGTAIL"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="example_site.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="bookings.example.com",
        WAGTAIL_BOOKINGS_VC_ENCRYPTION_KEYS=",".join(
            Fernet.generate_key().decode() for _ in range(2)
        ),
        # Every Python warning printed, once each: the check must print none.
        PYTHONWARNINGS="default",
    )
    env.update(overrides)
    return subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_settings_pass_the_deploy_check(figures):
    result = deploy_check()

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert result.stderr == ""
    figures("deploy check", production_settings="no issues (0 silenced)")


def test_the_check_would_catch_a_weak_secret_key():
    """The same run with a weak key fails: the clean result above is not a given."""
    result = deploy_check(DJANGO_SECRET_KEY="too-short")

    assert result.returncode != 0
    assert "security.W009" in result.stdout + result.stderr


def test_production_settings_refuse_to_start_without_their_secrets():
    result = deploy_check(DJANGO_SECRET_KEY="")

    assert result.returncode != 0
    assert "Set the DJANGO_SECRET_KEY environment variable." in result.stderr
