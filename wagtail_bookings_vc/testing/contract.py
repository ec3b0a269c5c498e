"""The contract every video-meeting provider passes, as a reusable pytest test class.

A provider's test module subclasses :class:`ProviderContract` and says how to build the
provider (and, for providers that need one, an account pointed at a fake server)::

    from wagtail_bookings_vc.testing.contract import ProviderContract

    class TestWherebyContract(ProviderContract):
        @pytest.fixture(autouse=True)
        def _server(self):
            with FakeWhereby() as self.server:
                yield

        def make_provider(self):
            return WherebyProvider({"API_BASE_URL": self.server.url}, provider_id="whereby")

        def make_account(self):
            return InMemoryAccount({"api_key": "test"})

pytest then runs every ``test_*`` method below against that provider. Class attributes
say where a provider differs in a documented way.
"""

# ruff: noqa: S101  (this module is test code shipped for providers' own test suites)

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ..providers.base import MeetingDetails, MeetingSpec, Provider, ProviderAccount

__all__ = ["ProviderContract"]


class ProviderContract:
    """Tests every provider must pass. Subclass it in a ``Test…`` class.

    Attributes:
        spec_options: ``MeetingSpec.options`` for the meetings the tests create.
        update_keeps_meeting: ``update_meeting`` keeps the external id and join URL (true
            for every built-in provider; a provider that makes a new meeting on update sets
            it to ``False`` and documents it).
        attendee_url_starts_with_join_url: The attendee's ``participant_url`` is the stored
            join URL, possibly with something added (a token, a fragment).
    """

    spec_options: ClassVar[dict[str, Any]] = {}
    update_keeps_meeting: ClassVar[bool] = True
    attendee_url_starts_with_join_url: ClassVar[bool] = True

    # What subclasses provide ---------------------------------------------------------

    def make_provider(self) -> Provider:
        """Return the provider under test."""
        raise NotImplementedError("Return the provider under test from make_provider().")

    def make_account(self) -> ProviderAccount | None:
        """Return the account meetings are made with (``None`` if none is needed)."""
        provider = self.make_provider()
        if provider.needs_account:
            raise NotImplementedError(f"{provider!r} needs an account: override make_account().")
        return None

    def make_spec(self, **changes: Any) -> MeetingSpec:
        """Return the spec the tests use, with ``changes`` applied."""
        start = datetime(2030, 1, 15, 9, 30, tzinfo=UTC)
        values: dict[str, Any] = {
            "reference": "BK-CONTRACT-0001",
            "topic": "Contract test: first consultation",
            "agenda": "A meeting made by the provider contract tests.",
            "start": start,
            "end": start + timedelta(minutes=45),
            "time_zone": "Europe/Rome",
            "host_email": "host@example.com",
            "host_name": "Hana Host",
            "attendee_emails": ("ann@example.com",),
            "options": dict(self.spec_options),
        }
        values.update(changes)
        return MeetingSpec(**values)

    # Helpers -------------------------------------------------------------------------

    @staticmethod
    def assert_https_url(url: str) -> None:
        parts = urlsplit(url)
        assert parts.scheme == "https", url
        assert parts.hostname, url
        assert not any(char.isspace() for char in url), url

    def _create(self) -> tuple[Provider, ProviderAccount | None, MeetingSpec, MeetingDetails]:
        provider = self.make_provider()
        account = self.make_account()
        spec = self.make_spec()
        return provider, account, spec, provider.create_meeting(account, spec)

    # The contract --------------------------------------------------------------------

    def test_provider_declares_what_it_is(self) -> None:
        provider = self.make_provider()
        assert provider.id
        assert str(provider.name)
        assert isinstance(provider.needs_oauth, bool)
        assert isinstance(provider.needs_account, bool)
        assert isinstance(provider.shared_link, bool)
        assert not provider.needs_oauth or provider.needs_account

    def test_create_returns_details_with_an_external_id_and_https_join_url(self) -> None:
        _, _, _, details = self._create()
        assert isinstance(details, MeetingDetails)
        assert isinstance(details.external_id, str)
        assert details.external_id
        self.assert_https_url(details.join_url)
        if details.host_url:
            self.assert_https_url(details.host_url)

    def test_details_survive_a_round_trip_through_json(self) -> None:
        _, _, _, details = self._create()
        stored = json.loads(json.dumps(details.to_dict()))
        assert MeetingDetails.from_dict(stored) == details

    def test_each_booking_gets_its_own_meeting_unless_the_link_is_shared(self) -> None:
        provider = self.make_provider()
        account = self.make_account()
        first = provider.create_meeting(account, self.make_spec())
        second = provider.create_meeting(account, self.make_spec(reference="BK-CONTRACT-0002"))
        if provider.shared_link:
            assert first.join_url == second.join_url
        else:
            assert first.external_id != second.external_id
            assert first.join_url != second.join_url

    def test_update_keeps_or_replaces_the_meeting_as_documented(self) -> None:
        provider, account, spec, details = self._create()
        moved = self.make_spec(
            start=spec.start + timedelta(days=1), end=spec.end + timedelta(days=1, minutes=15)
        )
        updated = provider.update_meeting(account, details.external_id, moved)
        assert isinstance(updated, MeetingDetails)
        self.assert_https_url(updated.join_url)
        if self.update_keeps_meeting:
            assert updated.external_id == details.external_id
            assert updated.join_url == details.join_url

    def test_delete_does_not_raise_even_twice(self) -> None:
        provider, account, _, details = self._create()
        assert provider.delete_meeting(account, details.external_id) is None
        # A meeting that is already gone counts as deleted.
        assert provider.delete_meeting(account, details.external_id) is None

    def test_participant_url_for_an_attendee(self) -> None:
        provider, account, spec, details = self._create()
        url = provider.participant_url(
            details,
            name="Ann Attendee",
            email="ann@example.com",
            is_host=False,
            expires_at=spec.end,
            account=account,
        )
        self.assert_https_url(url)
        if self.attendee_url_starts_with_join_url:
            assert url.startswith(details.join_url)

    def test_participant_url_for_the_host(self) -> None:
        provider, account, spec, details = self._create()
        url = provider.participant_url(
            details,
            name="Hana Host",
            email="host@example.com",
            is_host=True,
            expires_at=spec.end,
            account=account,
        )
        self.assert_https_url(url)
