import django

from .base import *  # noqa: F403

DEBUG = True

# Emails of the demo are printed by the development server.
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

# The demo derives its encryption key from SECRET_KEY; a real site sets
# WAGTAIL_BOOKINGS_VC["ENCRYPTION_KEYS"] from its secrets store.
SILENCED_SYSTEM_CHECKS = ["wagtail_bookings_vc.W101"]
