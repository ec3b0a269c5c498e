from __future__ import annotations

import os
import shutil

import pytest

# Playwright runs an event loop in the test thread; the ORM calls around it are synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Drive Debian's Chromium: Playwright must never download a browser."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("The browser tests need Debian's chromium: run `make browser`.")
    return {**browser_type_launch_args, "executable_path": executable, "args": CHROMIUM_ARGS}


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


# Video meetings ------------------------------------------------------------------------


def _with_providers(settings, providers):
    """Enable ``providers`` next to the built-ins, keeping the test settings' keys."""
    settings.WAGTAIL_BOOKINGS_VC = {
        **settings.WAGTAIL_BOOKINGS_VC,
        "PROVIDERS": providers,
        # Loopback fakes must not be reached through a proxy from the environment.
        "HTTP_TRUST_ENV": False,
    }


def default_site():
    """The default site; made again after a transactional test emptied the database."""
    from django.conf import settings
    from wagtail.models import Locale, Page, Site

    site = Site.objects.filter(is_default_site=True).first()
    if site is not None:
        return site
    Locale.objects.get_or_create(language_code=settings.LANGUAGE_CODE)
    root = Page.get_first_root_node() or Page.add_root(title="Root", slug="root")
    home = root.add_child(instance=Page(title="Home", slug="home"))
    return Site.objects.create(hostname="localhost", root_page=home, is_default_site=True)


def make_default_account(provider: str, **fields):
    """A connected site account for ``provider``, chosen as the default site's default."""
    from wagtail_bookings_vc.models import ConferencingAccount, ConferencingSettings

    account = ConferencingAccount.objects.create(
        provider=provider, label=f"Studio {provider}", **fields
    )
    conferencing = ConferencingSettings.for_site(default_site())
    conferencing.default_account = account
    conferencing.save()
    return account


@pytest.fixture
def recorder(settings, db):
    """The recording provider, enabled, with a connected default account; returns the account.

    Its calls are in ``tests.recording_provider.calls``.
    """
    from tests import recording_provider

    _with_providers(settings, {"recorder": {"CLASS": "tests.recording_provider.RecordingProvider"}})
    recording_provider.reset()
    yield make_default_account("recorder")
    recording_provider.reset()


@pytest.fixture
def loopback(settings, db):
    """The loopback HTTP provider and its fake server, with a connected default account.

    Returns ``(account, server)``.
    """
    from tests.recording_provider import FakeMeetingsServer

    with FakeMeetingsServer() as server:
        _with_providers(
            settings,
            {
                "loopback": {
                    "CLASS": "tests.recording_provider.LoopbackProvider",
                    "API_BASE_URL": server.url,
                    "HTTP_TIMEOUT": (2.0, 2.0),
                }
            },
        )
        yield make_default_account("loopback"), server


@pytest.fixture
def jitsi_default(db):
    """The built-in Jitsi Meet provider as the site's connected default account."""
    return make_default_account("jitsi")


@pytest.fixture
def run_jobs(django_capture_on_commit_callbacks):
    """Run a change, then what it leaves for after the commit: the jobs, inline."""

    def run(change, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return change(*args, **kwargs)

    return run


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache (the join-link throttle counts live there)."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
