"""The same promise on the at-scale setup: two ``qcluster`` processes on the Redis broker,
PostgreSQL, a worker killed mid-job, the queue flushed and the database connections cut.

Members book online appointments from a process of their own, so that the meeting jobs
go through Redis to two django-q2 clusters (two workers each) working the same queue,
while the provider fails a fifth of its calls at random and answers slowly. In the
middle of it one cluster is killed with SIGKILL (its workers die mid-call), then every
database connection of the workers is cut (as a database restart does) and the jobs
still queued are flushed away. The periodic sweep then recovers: every booking ends
with exactly one ready meeting at the provider, none made twice.

Runs on PostgreSQL with Redis on 127.0.0.1:6379 (``BVC_DATABASE=postgres``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time

import pytest
from django.db import connection
from django.utils import timezone

from tests.conftest import _with_providers, make_default_account
from tests.factories import ServiceFactory, StaffFactory, UserFactory
from tests.proof.conftest import REDIS_HOST, REDIS_PORT, SIZE, on_postgres, reachable
from tests.proof.flaky import FlakyMeetingsServer
from tests.proof.outcome import settle, tally
from tests.proof.processes import kill, running, start, stop, worker_env
from wagtail_bookings_vc.models import AccountStatus, Meeting, MeetingState

SEED = int(os.environ.get("BVC_PROOF_SEED", "20261123"))
READ_TIMEOUT = 0.3
HOLD = 0.45
LATENCY = 0.2

pytestmark = [
    *on_postgres,
    pytest.mark.skipif(
        not reachable(REDIS_HOST, REDIS_PORT), reason=f"needs Redis on {REDIS_HOST}:{REDIS_PORT}"
    ),
    pytest.mark.django_db(transaction=True),
]


def direct(function, *args, **kwargs):
    """Jobs left for after the commit run at the commit itself here (no test transaction)."""
    return function(*args, **kwargs)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def cut_database_connections() -> int:
    """End every other session on this database, as a database restart would."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def processed(log) -> int:
    return log.read_text(errors="replace").count("Processed 'wagtail_bookings_vc.meetings")


def test_two_clusters_a_killed_worker_and_a_flushed_queue_lose_and_double_nothing(
    settings, figures, tmp_path
):
    import redis

    name = f"bvc-proof-{os.getpid()}"
    queue = f"django_q:{name}:q"
    broker = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    started = time.monotonic()
    with FlakyMeetingsServer(fault_rate=0.2, seed=SEED, hold_seconds=HOLD) as server:
        server.add_latency(LATENCY)
        _with_providers(
            settings,
            {
                "flaky": {
                    "CLASS": "tests.proof.flaky.FlakyProvider",
                    "API_BASE_URL": server.url,
                    "HTTP_TIMEOUT": (2.0, READ_TIMEOUT),
                }
            },
        )
        account = make_default_account("flaky", credentials=server.issue_credentials())
        staff = StaffFactory.create_batch(5)
        service = ServiceFactory(
            staff=staff,
            online=True,
            duration_minutes=30,
            slot_interval_minutes=30,
            max_days_ahead=120,
        )
        members = UserFactory.create_batch(10)
        env = worker_env(
            BVC_PROOF_FAKE_URL=server.url,
            BVC_PROOF_Q_NAME=name,
            BVC_PROOF_WORKERS="2",
            BVC_PROOF_READ_TIMEOUT=str(READ_TIMEOUT),
        )
        logs = {key: tmp_path / f"{key}.log" for key in ("a", "b", "driver")}
        processes = []
        try:
            with running(processes):
                cluster_a = start(["manage.py", "qcluster"], env, logs["a"])
                processes.append(cluster_a)
                cluster_b = start(["manage.py", "qcluster"], env, logs["b"])
                processes.append(cluster_b)
                driver = start(
                    [
                        "-m",
                        "tests.proof.cluster_driver",
                        "--service",
                        str(service.pk),
                        "--members",
                        ",".join(str(member.pk) for member in members),
                        "--count",
                        str(SIZE),
                    ],
                    env,
                    logs["driver"],
                )
                processes.append(driver)

                def ready() -> int:
                    return Meeting.objects.filter(state=MeetingState.READY).count()

                def in_flight() -> int:
                    return Meeting.objects.filter(state=MeetingState.CREATING).count()

                # Kill cluster A once a third of the meetings are made, while meetings are
                # being made: its workers die in the middle of provider calls.
                wait_for(
                    lambda: (ready() >= SIZE // 3 and in_flight()) or driver.poll() is not None,
                    300,
                    "the clusters to make meetings",
                )
                killed_at = timezone.now()
                kill(cluster_a)
                ready_at_kill = ready()

                assert driver.wait(timeout=600) == 0, logs["driver"].read_text()
                booked = json.loads(logs["driver"].read_text().strip().splitlines()[-1])["booked"]
                assert len(booked) == SIZE

                # Cut cluster B's database connections while it works, then flush the queue.
                cut = cut_database_connections()
                time.sleep(0.5)
                dropped = broker.llen(queue)
                broker.delete(queue)
                stop(cluster_b)
                abandoned = Meeting.objects.exclude(state=MeetingState.READY).count()
                # Claims taken before the kill and never given back: the killed workers'.
                orphaned_claims = Meeting.objects.filter(
                    state=MeetingState.CREATING, claimed_at__lte=killed_at
                ).count()
                ready_before_sweep = ready()

            # The periodic sweep recovers everything.
            sweeps, retried, clock = settle(direct, timezone.now())
            server.raise_errors()
            found = tally(server)
        finally:
            for key in broker.scan_iter(f"django_q:{name}:*"):
                broker.delete(key)

        figures(
            f"reliability ({SIZE} bookings, two qcluster processes on Redis, PostgreSQL)",
            bookings_made=len(booked),
            jobs_done_by_cluster_a=processed(logs["a"]),
            jobs_done_by_cluster_b=processed(logs["b"]),
            claims_left_by_the_killed_workers=orphaned_claims,
            ready_when_a_was_killed=ready_at_kill,
            database_connections_cut=cut,
            jobs_flushed_from_the_queue=dropped,
            left_for_the_sweep=abandoned,
            ready_before_the_sweep=ready_before_sweep,
            sweeps=sweeps,
            clock_moved=str(clock - timezone.now()).split(".")[0],
            gave_up_then_retried=retried,
            api_calls=len(server.requests),
            faults=dict(sorted(server.faults.items())),
            meetings_ready=found["meetings_ready"],
            meetings_at_provider=found["meetings_at_provider"],
            duplicates=found["duplicates"],
            lost=len(found["lost"]),
            stuck_in_report=found["stuck_in_report"],
            seconds=round(time.monotonic() - started, 1),
        )

        assert processed(logs["a"]) > 0 and processed(logs["b"]) > 0, "both clusters worked"
        assert found["live_bookings"] == SIZE
        assert found["lost"] == []
        assert found["meetings_ready"] == found["meetings_needed"] == SIZE
        assert found["duplicates"] == 0
        assert found["orphans_at_provider"] == []
        assert found["wrong_time"] == []
        assert found["stuck_in_report"] == 0
        assert found["waiting_in_report"] == found["claimed_in_report"] == 0
        account.refresh_from_db()
        assert account.status == AccountStatus.CONNECTED
        assert retried <= max(1, SIZE // 100)
        assert clock - timezone.now() < dt.timedelta(days=1)
