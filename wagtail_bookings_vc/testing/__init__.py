"""Helpers for testing provider code: loopback fake servers, an in-memory account, and
the contract every provider passes (:mod:`wagtail_bookings_vc.testing.contract`).

Nothing here is imported by the app itself.
"""

from __future__ import annotations

from typing import Any

from .server import (
    FakeServer,
    RecordedRequest,
    Reply,
    empty_reply,
    fake_server_fixture,
    json_reply,
    route,
    text_reply,
)

__all__ = [
    "FakeServer",
    "InMemoryAccount",
    "RecordedRequest",
    "Reply",
    "empty_reply",
    "fake_server_fixture",
    "json_reply",
    "route",
    "text_reply",
]


class InMemoryAccount:
    """An account that follows :class:`~wagtail_bookings_vc.providers.base.ProviderAccount`
    and keeps everything in memory.

    Attributes:
        external_user_id: As set by the test or by ``finish_authorization``.
        credential_history: Every dict assigned to ``credentials``, oldest first, so a test
            can check that a provider handed back rotated tokens.
    """

    def __init__(
        self,
        credentials: dict[str, Any] | None = None,
        external_user_id: str = "",
        external_email: str = "",
    ) -> None:
        self._credentials: dict[str, Any] = dict(credentials or {})
        self.external_user_id = external_user_id
        self.external_email = external_email
        self.credential_history: list[dict[str, Any]] = []

    @property
    def credentials(self) -> dict[str, Any]:
        return self._credentials

    @credentials.setter
    def credentials(self, value: dict[str, Any]) -> None:
        self._credentials = dict(value)
        self.credential_history.append(dict(value))

    def __repr__(self) -> str:
        # Never the credentials themselves: test output ends up in CI logs.
        return f"<InMemoryAccount external_user_id={self.external_user_id!r}>"
