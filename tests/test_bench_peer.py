"""The benchmark beside django-appointment: what runs without it, and how it prints."""

from __future__ import annotations

import importlib.util
import runpy

import pytest

from benchmarks import peer

REAL_FIND_SPEC = importlib.util.find_spec


def find_spec_with_appointment(installed: bool):
    def find_spec(name: str, *args, **kwargs):
        if name == "appointment":
            return object() if installed else None
        return REAL_FIND_SPEC(name, *args, **kwargs)

    return find_spec


@pytest.fixture
def bench_environment(monkeypatch, tmp_path):
    """The variables benchmarks.run sets before Django starts."""
    for name, value in {
        "BVC_BENCH_DATABASE": "sqlite",
        "BVC_BENCH_DB_NAME": str(tmp_path / "bench.sqlite3"),
        "BVC_BENCH_SECRET_KEY": "not-secret",
        "BVC_BENCH_KEY": "x" * 44,
        "BVC_BENCH_FAKE_URL": "http://127.0.0.1:9",
        "BVC_BENCH_Q_NAME": "bvc-bench-test",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("installed", [True, False])
def test_bench_settings_install_django_appointment_only_when_importable(
    bench_environment, monkeypatch, installed
):
    monkeypatch.setattr(importlib.util, "find_spec", find_spec_with_appointment(installed))

    settings = runpy.run_module("benchmarks.settings")

    assert ("appointment" in settings["INSTALLED_APPS"]) is installed
    if installed:
        # Last: its templates and translations never shadow the site's.
        assert settings["INSTALLED_APPS"][-1] == "appointment"
    assert "wagtail_bookings_vc" in settings["INSTALLED_APPS"]


def test_peer_is_unavailable_without_the_package(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", find_spec_with_appointment(False))

    assert peer.available() is False


def test_peer_is_unavailable_when_importable_but_not_an_installed_app(monkeypatch):
    # The test settings do not install it, as settings other than the benchmark's.
    monkeypatch.setattr(importlib.util, "find_spec", find_spec_with_appointment(True))

    assert peer.available() is False


def side(p50: float, p95: float, **extra) -> dict:
    return {"samples": 20, "p50_ms": p50, "p95_ms": p95, "min_ms": p50, "max_ms": p95, **extra}


RESULT = {
    "peer": "django-appointment",
    "peer_version": "3.12.0",
    "existing_appointments": 10_000,
    "copied_before_measuring": 0,
    "free_slots_one_staff_30_days": {
        "ours": side(6.3, 8.3, slots_found=698, queries=7),
        "theirs": side(167.3, 221.8, slots_found=698, queries=382),
        "ratio": 26.6,
    },
    "booking_request": {
        "ours": side(40.0, 50.0, requests=1),
        "theirs": side(36.0, 45.0, requests=2, emails_sent_in_the_requests=1),
        "their_pages_between": side(33.0, 40.0, requests=2),
        "ratio": 0.9,
    },
    "slot_check": {"equal": True, "staff_days_compared": 50, "slots_compared": 1160},
    "notes": ["their booking POSTs do not check that the time is still free"],
}


def test_table_prints_both_apps_side_by_side_with_the_ratio():
    lines = peer.table(RESULT).splitlines()

    assert "django-appointment 3.12.0" in lines[0]
    assert "10,000 existing bookings" in lines[0]
    slots = next(line for line in lines if line.startswith("free slots, 1 staff member"))
    assert slots.split()[-5:] == ["6.3", "8.3", "167.3", "221.8", "26.6×"]
    booking = next(line for line in lines if line.startswith("booking request"))
    assert booking.split()[-5:] == ["40.0", "50.0", "36.0", "45.0", "0.9×"]


def test_table_says_whether_both_apps_found_the_same_free_slots():
    text = peer.table(RESULT)

    assert "698 found by ours in 7 queries, 698 by theirs in 382" in text
    assert "the same times before timing: yes (1160 slots, 50 staff-days)" in text
    assert "* their booking POSTs do not check that the time is still free" in text
