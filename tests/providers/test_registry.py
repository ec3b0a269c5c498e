"""The registry: built-ins, a site's own provider class, unknown ids, settings changes."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from wagtail_bookings_vc.providers import registry
from wagtail_bookings_vc.providers.base import MeetingDetails, Provider
from wagtail_bookings_vc.providers.jitsi import JitsiProvider
from wagtail_bookings_vc.providers.manual import ManualLinkProvider
from wagtail_bookings_vc.providers.registry import (
    BuiltinProvider,
    ProviderNotAvailable,
    UnknownProvider,
    check_providers,
    enabled_providers,
    get_provider,
    provider_choices,
    shared_link_provider,
)


class SiteProvider(Provider):
    """A site's own provider, configured with "CLASS"."""

    id = "site_rooms"
    name = "Site rooms"
    needs_account = False

    def create_meeting(self, account, spec):
        return MeetingDetails(spec.reference, f"{self.options['BASE']}/{spec.reference}")

    def update_meeting(self, account, external_id, spec):
        return MeetingDetails(external_id, f"{self.options['BASE']}/{external_id}")

    def delete_meeting(self, account, external_id):
        return None


class OAuthProvider(SiteProvider):
    id = "oauth_rooms"
    needs_oauth = True
    needs_account = True


class NotAProvider:
    pass


SITE_PROVIDER = f"{__name__}.SiteProvider"


@pytest.fixture
def providers(settings):
    """Set WAGTAIL_BOOKINGS_VC["PROVIDERS"]; the registry is rebuilt on the change."""

    def configure(value):
        settings.WAGTAIL_BOOKINGS_VC = {"PROVIDERS": value}

    return configure


def test_jitsi_and_manual_are_enabled_by_default(settings):
    settings.WAGTAIL_BOOKINGS_VC = {}
    assert [p.id for p in enabled_providers()] == ["jitsi", "manual"]
    assert isinstance(get_provider("jitsi"), JitsiProvider)
    assert isinstance(get_provider("manual"), ManualLinkProvider)
    assert get_provider("jitsi").domain == "meet.jit.si"


def test_provider_instances_are_cached():
    assert get_provider("jitsi") is get_provider("jitsi")


def test_unknown_id_raises_a_clear_error_that_is_also_a_key_error(providers):
    providers({})
    with pytest.raises(UnknownProvider) as caught:
        get_provider("zoom")
    assert isinstance(caught.value, KeyError)
    assert isinstance(caught.value, ImproperlyConfigured)
    assert "'zoom'" in str(caught.value) and "PROVIDERS" in str(caught.value)


def test_a_provider_can_be_turned_off(providers):
    providers({"manual": None, "jitsi": False})
    assert enabled_providers() == []
    with pytest.raises(UnknownProvider):
        get_provider("manual")
    assert shared_link_provider() is None


def test_a_site_adds_its_own_provider_class(providers):
    providers({"site_rooms": {"CLASS": SITE_PROVIDER, "BASE": "https://rooms.example"}})
    provider = get_provider("site_rooms")
    assert isinstance(provider, SiteProvider)
    assert provider.options["BASE"] == "https://rooms.example"
    assert "CLASS" not in provider.options
    assert [p.id for p in enabled_providers()] == ["jitsi", "manual", "site_rooms"]


def test_one_class_can_serve_two_ids(providers):
    providers(
        {
            "jitsi_staff": {
                "CLASS": "wagtail_bookings_vc.providers.jitsi.JitsiProvider",
                "DOMAIN": "meet.staff.example",
                "NAME": "Staff Jitsi",
            }
        }
    )
    staff = get_provider("jitsi_staff")
    assert (staff.id, staff.domain, staff.name) == (
        "jitsi_staff",
        "meet.staff.example",
        "Staff Jitsi",
    )
    assert get_provider("jitsi").domain == "meet.jit.si"


def test_builtin_ids_get_their_default_base_urls(providers, monkeypatch):
    # Stand-in for a built-in whose module is written separately.
    monkeypatch.setitem(
        registry.BUILTIN_PROVIDERS,
        "zoom",
        BuiltinProvider(
            SITE_PROVIDER,
            {"API_BASE_URL": "https://api.zoom.us/v2", "OAUTH_BASE_URL": "https://zoom.us"},
        ),
    )
    providers({"zoom": {"OAUTH_BASE_URL": "http://127.0.0.1:9999", "BASE": "x"}})
    options = get_provider("zoom").options
    assert options["API_BASE_URL"] == "https://api.zoom.us/v2"
    assert options["OAUTH_BASE_URL"] == "http://127.0.0.1:9999"


def test_a_builtin_id_with_its_own_class_keeps_the_real_base_urls(providers, monkeypatch):
    monkeypatch.setitem(
        registry.BUILTIN_PROVIDERS,
        "zoom",
        BuiltinProvider(
            "wagtail_bookings_vc.providers.not_written_yet.ZoomProvider",
            {"API_BASE_URL": "https://api.zoom.us/v2"},
        ),
    )
    providers({"zoom": {"CLASS": SITE_PROVIDER, "BASE": "x"}})
    provider = get_provider("zoom")
    assert isinstance(provider, SiteProvider)
    assert provider.options["API_BASE_URL"] == "https://api.zoom.us/v2"


def test_real_default_base_urls_are_declared_for_every_builtin():
    defaults = {key: value.default_options for key, value in registry.BUILTIN_PROVIDERS.items()}
    assert defaults["zoom"] == {
        "API_BASE_URL": "https://api.zoom.us/v2",
        "OAUTH_BASE_URL": "https://zoom.us",
    }
    assert defaults["google_meet"]["API_BASE_URL"] == "https://www.googleapis.com/calendar/v3"
    assert defaults["google_meet"]["TOKEN_URI"] == "https://oauth2.googleapis.com/token"
    assert defaults["google_meet"]["AUTH_URI"] == "https://accounts.google.com/o/oauth2/v2/auth"
    assert (
        defaults["microsoft_teams"]["AUTHORITY"]
        == "https://login.microsoftonline.com/organizations"
    )
    assert defaults["microsoft_teams"]["GRAPH_BASE_URL"] == "https://graph.microsoft.com/v1.0"
    assert defaults["jitsi"] == {"DOMAIN": "meet.jit.si"}


def test_a_missing_builtin_module_leaves_the_others_working(providers, monkeypatch):
    monkeypatch.setitem(
        registry.BUILTIN_PROVIDERS,
        "zoom",
        BuiltinProvider("wagtail_bookings_vc.providers.not_written_yet.ZoomProvider"),
    )
    providers({"zoom": {"CLIENT_ID": "id"}})
    assert [p.id for p in enabled_providers()] == ["jitsi", "manual"]
    with pytest.raises(ProviderNotAvailable, match="cannot import"):
        get_provider("zoom")
    [error] = check_providers()
    assert error.id == "wagtail_bookings_vc.E102"
    assert "'zoom'" in error.msg


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"rooms": {"CLASS": "wagtail_bookings_vc.providers.nowhere.Provider"}}, "cannot import"),
        ({"rooms": {"CLASS": f"{__name__}.NotAProvider"}}, "not a subclass"),
        ({"rooms": {"BASE": "x"}}, "not built in"),
        ({"Bad-Id": {"CLASS": SITE_PROVIDER}}, "lower-case"),
        ({"rooms": "https://rooms.example"}, "must be a dict"),
        ({"jitsi": {"DOMAIN": "https://meet.example.com/"}}, "DOMAIN"),
    ],
)
def test_a_broken_entry_is_reported_by_the_system_check(providers, config, message):
    providers(config)
    errors = check_providers()
    assert [e.id for e in errors] == ["wagtail_bookings_vc.E102"]
    assert message in errors[0].msg
    assert "manual" in [p.id for p in enabled_providers()]


def test_providers_setting_must_be_a_dict(providers):
    providers(["jitsi"])
    with pytest.raises(ImproperlyConfigured):
        get_provider("jitsi")
    assert [e.id for e in check_providers()] == ["wagtail_bookings_vc.E103"]


def test_override_settings_rebuilds_the_registry():
    before = get_provider("jitsi")
    with override_settings(
        WAGTAIL_BOOKINGS_VC={"PROVIDERS": {"jitsi": {"DOMAIN": "meet.example.org"}}}
    ):
        assert get_provider("jitsi").domain == "meet.example.org"
    after = get_provider("jitsi")
    assert after.domain == "meet.jit.si"
    assert after is not before


def test_choices_for_forms_can_be_filtered(providers):
    providers({"oauth_rooms": {"CLASS": f"{__name__}.OAuthProvider", "BASE": "x"}})
    assert [c[0] for c in provider_choices()] == ["jitsi", "manual", "oauth_rooms"]
    assert [c[0] for c in provider_choices(needs_account=True)] == ["oauth_rooms"]
    assert [c[0] for c in provider_choices(needs_account=False)] == ["jitsi", "manual"]
    assert provider_choices(shared_link=True) == [("manual", get_provider("manual").name)]
    assert shared_link_provider() is get_provider("manual")


def test_system_check_passes_the_default_setup(providers):
    providers({})
    assert check_providers() == []


def test_system_check_warns_about_a_short_jitsi_secret(providers):
    providers({"jitsi": {"APP_ID": "bookings", "APP_SECRET": "short"}})
    assert [m.id for m in check_providers()] == ["wagtail_bookings_vc.W103"]
