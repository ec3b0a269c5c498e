"""The loopback fake server and its fault knobs, seen through the providers' HTTP helper."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from wagtail_bookings_vc.providers.base import (
    AuthorizationExpired,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from wagtail_bookings_vc.providers.http import make_session, raise_for_status
from wagtail_bookings_vc.testing import (
    FakeServer,
    InMemoryAccount,
    Reply,
    empty_reply,
    fake_server_fixture,
    json_reply,
    route,
    text_reply,
)


class FakeRooms(FakeServer):
    """A small provider API, the way the Zoom, Google and Teams fakes are built."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rooms: dict[str, dict] = {}

    @route("POST", "/v1/users/{user_id}/rooms")
    def create(self, request, user_id):
        room_id = str(len(self.rooms) + 1)
        self.rooms[room_id] = {"id": room_id, "owner": user_id, **request.json()}
        return json_reply(self.rooms[room_id], status=201)

    @route("GET", "/v1/rooms/{room_id}")
    def get(self, request, room_id):
        if room_id not in self.rooms:
            return json_reply({"code": 3001, "message": f"Room {room_id} is not found"}, 404)
        return self.rooms[room_id]

    @route("DELETE", "/v1/rooms/{room_id}")
    def delete(self, request, room_id):
        self.rooms.pop(room_id, None)

    @route("POST", "/v1/boom")
    def boom(self, request):
        raise RuntimeError("handler bug")

    def unauthorized_reply(self):
        return json_reply({"code": 124, "message": "Access token is expired."}, 401)


fake_rooms = fake_server_fixture(FakeRooms)


@pytest.fixture
def session():
    return make_session("Rooms", timeout=(0.5, 0.3), trust_env=False)


def create_room(server, session, topic="Yoga"):
    answer = session.post(server.url_for("/v1/users/u1/rooms"), json={"topic": topic})
    return raise_for_status(answer, "Rooms").json()


def test_runs_on_loopback_with_a_random_port(fake_rooms):
    assert fake_rooms.url.startswith("http://127.0.0.1:")
    assert fake_rooms.port > 0
    with FakeRooms() as other:
        assert other.port != fake_rooms.port


def test_routes_answer_and_every_request_is_recorded(fake_rooms, session):
    room = create_room(fake_rooms, session)
    assert room == {"id": "1", "owner": "u1", "topic": "Yoga"}
    assert (
        session.get(fake_rooms.url_for("/v1/rooms/1?show=all&show=more")).json()["topic"] == "Yoga"
    )
    assert session.delete(fake_rooms.url_for("/v1/rooms/1")).status_code == 204

    create, get, delete = fake_rooms.requests
    assert (create.method, create.path) == ("POST", "/v1/users/u1/rooms")
    assert create.json() == {"topic": "Yoga"}
    assert create.header("content-type") == "application/json"
    assert get.query == {"show": ["all", "more"]}
    assert get.query_value("show") == "all"
    assert delete.body == b""
    assert fake_rooms.requests_to("GET", "/v1/rooms/{room_id}") == [get]
    assert fake_rooms.last_request is delete


def test_form_bodies_and_chunked_bodies_are_read(fake_rooms, session):
    fake_rooms.add_route("POST", "/oauth/token", lambda request: {"ok": True})
    session.post(fake_rooms.url_for("/oauth/token"), data={"grant_type": "refresh_token"})
    assert fake_rooms.last_request.form() == {"grant_type": "refresh_token"}
    session.post(fake_rooms.url_for("/oauth/token"), data=iter([b"a=1", b"&b=2"]))
    assert fake_rooms.last_request.form() == {"a": "1", "b": "2"}


def test_reply_helpers(fake_rooms, session):
    fake_rooms.add_route("GET", "/text", lambda request: text_reply("pong", headers={"X-A": "1"}))
    fake_rooms.add_route("GET", "/empty", lambda request: empty_reply(202))
    fake_rooms.add_route("GET", "/pair", lambda request: (201, {"made": True}))
    fake_rooms.add_route("GET", "/raw", lambda request: Reply(418, b"teapot"))
    text = session.get(fake_rooms.url_for("/text"))
    assert (text.text, text.headers["X-A"]) == ("pong", "1")
    assert session.get(fake_rooms.url_for("/empty")).status_code == 202
    assert session.get(fake_rooms.url_for("/pair")).json() == {"made": True}
    assert session.get(fake_rooms.url_for("/raw")).status_code == 418


def test_a_later_route_replaces_an_earlier_one(fake_rooms, session):
    fake_rooms.add_route("GET", "/v1/rooms/{room_id}", lambda request, room_id: {"id": "stub"})
    assert session.get(fake_rooms.url_for("/v1/rooms/9")).json() == {"id": "stub"}


def test_unknown_path_is_a_permanent_failure(fake_rooms, session):
    with pytest.raises(PermanentFailure) as caught:
        raise_for_status(session.get(fake_rooms.url_for("/nowhere")), "Rooms")
    assert "HTTP 404" in str(caught.value)


def test_fail_the_next_calls_with_a_server_error(fake_rooms, session):
    fake_rooms.fail_next(2, status=503)
    for _ in range(2):
        with pytest.raises(TemporaryFailure):
            create_room(fake_rooms, session)
    assert create_room(fake_rooms, session)["id"] == "1"
    assert len(fake_rooms.requests) == 3
    assert len(fake_rooms.rooms) == 1


def test_a_fault_can_target_one_path(fake_rooms, session):
    fake_rooms.fail_next(1, status=500, path="/v1/rooms/")
    create_room(fake_rooms, session)  # not targeted
    with pytest.raises(TemporaryFailure):
        raise_for_status(session.get(fake_rooms.url_for("/v1/rooms/1")))
    assert fake_rooms.pending_faults == 0


def test_rate_limit_with_retry_after(fake_rooms, session):
    fake_rooms.rate_limit_next(1, retry_after=12)
    fake_rooms.rate_limit_next(1, retry_after=None)
    with pytest.raises(RateLimited) as first:
        create_room(fake_rooms, session)
    assert first.value.retry_after == 12.0
    with pytest.raises(RateLimited) as second:
        create_room(fake_rooms, session)
    assert second.value.retry_after is None
    assert create_room(fake_rooms, session)


def test_503_with_retry_after_is_a_rate_limit(fake_rooms, session):
    fake_rooms.rate_limit_next(1, retry_after=4, status=503)
    with pytest.raises(RateLimited) as caught:
        create_room(fake_rooms, session)
    assert caught.value.retry_after == 4.0


def test_expired_tokens_answer_401_in_the_providers_shape(fake_rooms, session):
    fake_rooms.expire_tokens()
    with pytest.raises(AuthorizationExpired) as caught:
        create_room(fake_rooms, session)
    assert caught.value.provider_code == "124"
    assert create_room(fake_rooms, session)


def test_a_timeout_still_happens_at_the_provider(fake_rooms, session):
    # The answer is lost, but the room is made: what idempotent creation must cope with.
    fake_rooms.timeout_next(1, seconds=0.8)
    with pytest.raises(TemporaryFailure, match="No answer from Rooms in time"):
        create_room(fake_rooms, session)
    deadline = time.monotonic() + 3
    while not fake_rooms.rooms and time.monotonic() < deadline:
        time.sleep(0.02)
    assert list(fake_rooms.rooms) == ["1"]


def test_a_dropped_call_has_no_effect(fake_rooms, session):
    fake_rooms.timeout_next(1, seconds=0.5, process=False)
    with pytest.raises(TemporaryFailure):
        create_room(fake_rooms, session)
    time.sleep(0.4)
    assert fake_rooms.rooms == {}


def test_latency_slows_every_call_until_reset(fake_rooms):
    slow = make_session("Rooms", timeout=(0.5, 2), trust_env=False)
    fake_rooms.add_latency(0.3)
    started = time.monotonic()
    create_room(fake_rooms, slow)
    assert time.monotonic() - started >= 0.3
    fake_rooms.add_latency(1)
    with pytest.raises(TemporaryFailure):
        create_room(fake_rooms, make_session("Rooms", timeout=0.2, trust_env=False))
    fake_rooms.reset_faults()
    started = time.monotonic()
    create_room(fake_rooms, slow)
    assert time.monotonic() - started < 0.3


def test_a_handler_bug_answers_500_and_is_kept_for_the_test(fake_rooms, session):
    with pytest.raises(TemporaryFailure):
        raise_for_status(session.post(fake_rooms.url_for("/v1/boom")))
    assert isinstance(fake_rooms.errors[0], RuntimeError)
    with pytest.raises(RuntimeError, match="handler bug"):
        fake_rooms.raise_errors()


def test_stop_does_not_wait_for_held_calls():
    server = FakeRooms().start()
    server.timeout_next(1, seconds=30)
    outcome = []

    def call():
        try:
            requests.get(server.url_for("/v1/rooms/1"), timeout=60)
        except requests.RequestException as exc:
            outcome.append(exc)

    client = threading.Thread(target=call, daemon=True)
    client.start()
    deadline = time.monotonic() + 2
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
    client.join(timeout=5)
    assert outcome, "the held call ends without an answer"


def test_a_fault_needs_at_least_one_call(fake_rooms):
    with pytest.raises(ValueError):
        fake_rooms.fail_next(0)


def test_clear_forgets_requests(fake_rooms, session):
    create_room(fake_rooms, session)
    fake_rooms.clear()
    assert fake_rooms.requests == []


def test_in_memory_account_records_rotated_tokens():
    account = InMemoryAccount({"refresh_token": "r1"})
    account.credentials = {**account.credentials, "refresh_token": "r2"}
    assert account.credentials == {"refresh_token": "r2"}
    assert [c["refresh_token"] for c in account.credential_history] == ["r2"]
