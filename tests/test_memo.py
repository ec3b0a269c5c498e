"""Site-wide lookups remembered for the length of one email or page, and only there."""

from __future__ import annotations

from wagtail_bookings_vc.memo import read_scope, remembered


def counter():
    calls = []

    def load():
        calls.append(1)
        return len(calls)

    return load, calls


def test_outside_a_scope_every_call_loads():
    load, calls = counter()

    assert [remembered("site", load) for _ in range(3)] == [1, 2, 3]
    assert len(calls) == 3


def test_inside_a_scope_each_key_loads_once():
    load, calls = counter()
    other, other_calls = counter()

    with read_scope():
        assert [remembered("site", load) for _ in range(3)] == [1, 1, 1]
        assert remembered(("settings", 2), other) == 1
        assert remembered(("settings", 2), other) == 1

    assert (len(calls), len(other_calls)) == (1, 1)


def test_a_scope_forgets_when_it_ends_and_each_scope_starts_afresh():
    load, calls = counter()

    with read_scope():
        assert remembered("site", load) == 1
        with read_scope():
            assert remembered("site", load) == 2
        assert remembered("site", load) == 1
    assert remembered("site", load) == 3
    assert len(calls) == 3
