"""The same promise on the at-scale setup: two ``qcluster`` processes on the Redis broker,
PostgreSQL restarted under them, a worker killed mid-job and the queue flushed.

Members book online appointments from a process of their own, so that the meeting jobs
go through Redis to two django-q2 clusters (two workers each) working the same queue,
while the provider fails a fifth of its calls at random and answers slowly.

1. Half of the bookings are made; while both clusters make their meetings, the
   PostgreSQL server is restarted for real (``pg_ctlcluster ... restart --mode fast``):
   every session ends, jobs cut in the middle of a provider call leave their claim, and
   the jobs taken while the server is down fail.
2. The clusters go on by themselves (django-q2 opens a new connection for each job):
   the other half is booked, and both clusters make meetings again.
3. One cluster is killed with SIGKILL (its workers die mid-call), and the jobs still
   queued are flushed away.

The periodic sweep then recovers: every booking ends with exactly one ready meeting at
the provider, none made twice. How long the server was down and how many jobs failed
across the restart are among the figures.

The server must be a local Debian cluster (``pg_lsclusters``) that the test may restart
(root or the cluster's owner): otherwise the test fails and says why. On a machine whose
database is not yours, ``BVC_PROOF_NO_DB_RESTART=1`` cuts the workers' connections
instead (``pg_terminate_backend``) and the figures say so.

Runs on PostgreSQL with Redis on 127.0.0.1:6379 (``BVC_DATABASE=postgres``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections
from django.utils import timezone

from tests.conftest import _with_providers, make_default_account
from tests.factories import ServiceFactory, StaffFactory, UserFactory
from tests.proof import database
from tests.proof.conftest import REDIS_HOST, REDIS_PORT, SIZE, on_postgres, reachable
from tests.proof.flaky import FlakyMeetingsServer
from tests.proof.outcome import settle, tally
from tests.proof.processes import kill, log_mark, log_text, running, start, stop, worker_env
from wagtail_bookings_vc.models import AccountStatus, Meeting, MeetingState

SEED = int(os.environ.get("BVC_PROOF_SEED", "20261123"))
READ_TIMEOUT = 0.3
HOLD = 0.45
LATENCY = 0.2
#: Set to 1 where the database server is not yours to restart: connections are cut instead.
NO_RESTART = os.environ.get("BVC_PROOF_NO_DB_RESTART") == "1"

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


def restartable_cluster() -> database.Cluster | None:
    """The server to restart; ``None`` when ``BVC_PROOF_NO_DB_RESTART=1`` says not to."""
    if NO_RESTART:
        return None
    try:
        return database.local_cluster(connection)
    except database.CannotRestart as error:
        reason = str(error)
    pytest.fail(
        f"The proof restarts the PostgreSQL server, and cannot here: {reason}. "
        "Run it as root (or as the cluster's owner) on the machine of the server, or "
        "set BVC_PROOF_NO_DB_RESTART=1 to cut the workers' connections instead.",
        pytrace=False,
    )


def other_sessions() -> int:
    """Sessions on this database other than the test's own: the workers' open ones."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def cut_database_connections() -> int:
    """End every other session on this database: what a restart does to the workers."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def restart_database(cluster: database.Cluster) -> database.Outage:
    """Restart the server; the test's own connection, ended too, is opened again."""
    settings_dict = connection.settings_dict
    conninfo = {
        "host": settings_dict["HOST"] or None,
        "port": settings_dict["PORT"] or None,
        "user": settings_dict["USER"] or None,
        "password": settings_dict["PASSWORD"] or None,
        "dbname": settings_dict["NAME"],
    }
    try:
        return database.restart(cluster, conninfo)
    except database.RestartFailed as error:
        reason = str(error)
    finally:
        connections.close_all()
    pytest.fail(f"The PostgreSQL restart failed: {reason}", pytrace=False)


def processed(text: str) -> int:
    return text.count("Processed 'wagtail_bookings_vc.meetings")


def failed(text: str) -> int:
    return text.count("Failed '")


def booked_by(log: Path) -> list[int]:
    return json.loads(log.read_text().strip().splitlines()[-1])["booked"]


def ready() -> int:
    return Meeting.objects.filter(state=MeetingState.READY).count()


def in_flight(since: dt.datetime) -> int:
    """Meetings a worker claimed after ``since`` and is making now."""
    return Meeting.objects.filter(state=MeetingState.CREATING, claimed_at__gt=since).count()


def test_two_clusters_a_database_restart_a_killed_worker_and_a_flushed_queue_lose_nothing(
    settings, figures, tmp_path
):
    import redis

    cluster = restartable_cluster()
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
        logs = {key: tmp_path / f"{key}.log" for key in ("a", "b", "driver-1", "driver-2")}
        first_half = SIZE // 2
        processes = []

        def book(count: int, log: str) -> Any:
            process = start(
                [
                    "-m",
                    "tests.proof.cluster_driver",
                    "--service",
                    str(service.pk),
                    "--members",
                    ",".join(str(member.pk) for member in members),
                    "--count",
                    str(count),
                ],
                env,
                logs[log],
            )
            processes.append(process)
            return process

        try:
            with running(processes):
                # The first half is booked before the clusters start (the booking process
                # would lose its connection in the restart): its jobs wait in the queue.
                driver = book(first_half, "driver-1")
                assert driver.wait(timeout=600) == 0, logs["driver-1"].read_text()
                booked = booked_by(logs["driver-1"])
                clusters_started_at = timezone.now()
                cluster_a = start(["manage.py", "qcluster"], env, logs["a"])
                processes.append(cluster_a)
                cluster_b = start(["manage.py", "qcluster"], env, logs["b"])
                processes.append(cluster_b)

                # Restart the server once a third of them are made, while meetings are
                # being made: jobs lose their connection in the middle of provider calls.
                wait_for(
                    lambda: (
                        (ready() >= first_half // 3 and in_flight(clusters_started_at))
                        or (not broker.llen(queue) and not in_flight(clusters_started_at))
                    ),
                    300,
                    "the clusters to make meetings",
                )
                assert cluster_a.poll() is None and cluster_b.poll() is None
                ready_at_restart = ready()
                in_flight_at_restart = in_flight(clusters_started_at)
                done_before_restart = {key: processed(log_text(logs[key])) for key in "ab"}
                restart_mark = {key: log_mark(logs[key]) for key in "ab"}
                if cluster is None:
                    sessions_ended, outage = cut_database_connections(), None
                else:
                    sessions_ended = other_sessions()
                    outage = restart_database(cluster)
                back_at = timezone.now()
                back_mark = {key: log_mark(logs[key]) for key in "ab"}

                # The clusters go on by themselves: the other half is booked and made.
                driver = book(SIZE - first_half, "driver-2")

                def after_restart(key: str) -> str:
                    return log_text(logs[key], since=back_mark[key])

                # Kill cluster A once both clusters have made meetings again, while
                # meetings are being made: its workers die in the middle of provider calls.
                wait_for(
                    lambda: (
                        (
                            processed(after_restart("a"))
                            and processed(after_restart("b"))
                            and ready() >= ready_at_restart + (SIZE - first_half) // 3
                            and in_flight(back_at)
                        )
                        or (
                            driver.poll() is not None
                            and not broker.llen(queue)
                            and not in_flight(back_at)
                        )
                    ),
                    300,
                    "the clusters to make meetings after the restart",
                )
                assert cluster_a.poll() is None, "cluster A lived through the restart"
                assert cluster_b.poll() is None, "cluster B lived through the restart"
                killed_at = timezone.now()
                kill_mark = {key: log_mark(logs[key]) for key in "ab"}
                kill(cluster_a)
                ready_at_kill = ready()

                assert driver.wait(timeout=600) == 0, logs["driver-2"].read_text()
                booked += booked_by(logs["driver-2"])
                assert len(booked) == SIZE

                # Flush what is still queued while cluster B works.
                time.sleep(0.5)
                dropped = broker.llen(queue)
                broker.delete(queue)
                stop(cluster_b)
                abandoned = Meeting.objects.exclude(state=MeetingState.READY).count()
                # Claims taken and never given back: by the jobs the restart cut, and by
                # the workers killed with cluster A.
                claimed = Meeting.objects.filter(state=MeetingState.CREATING)
                claims_left_by_restart = claimed.filter(claimed_at__lte=back_at).count()
                orphaned_claims = claimed.filter(
                    claimed_at__gt=back_at, claimed_at__lte=killed_at
                ).count()
                ready_before_sweep = ready()

            across_restart = {
                key: log_text(logs[key], restart_mark[key], kill_mark[key]) for key in "ab"
            }
            after_it = {key: log_text(logs[key], back_mark[key], kill_mark[key]) for key in "ab"}
            # The periodic sweep recovers everything.
            sweeps, retried, clock = settle(direct, timezone.now())
            server.raise_errors()
            found = tally(server)
        finally:
            for key in broker.scan_iter(f"django_q:{name}:*"):
                broker.delete(key)

        done = {key: processed(log_text(logs[key])) for key in "ab"}
        done_after_restart = {key: processed(after_it[key]) for key in "ab"}
        # What each cluster did after its last failed job: it went on, or it did not.
        after_last_failure = {
            key: processed(text[text.rfind("Failed '") :]) if failed(text) else processed(text)
            for key, text in across_restart.items()
        }
        if outage is None:
            restart_figures = {
                "database_restart": "none (BVC_PROOF_NO_DB_RESTART=1): connections cut instead",
                "database_connections_cut": sessions_ended,
            }
        else:
            restart_figures = {
                "database_restart": outage.command,
                "database_sessions_ended_by_the_restart": sessions_ended,
                "seconds_the_database_refused_connections": outage.seconds_down,
                "seconds_the_restart_took": outage.seconds_to_ready,
            }
        figures(
            f"reliability ({SIZE} bookings, two qcluster processes on Redis, PostgreSQL)",
            bookings_made=len(booked),
            **restart_figures,
            ready_at_the_restart=ready_at_restart,
            meetings_in_flight_at_the_restart=in_flight_at_restart,
            jobs_done_before_the_restart_by_a_and_b=(
                f"{done_before_restart['a']} / {done_before_restart['b']}"
            ),
            jobs_failed_across_the_restart=sum(failed(text) for text in across_restart.values()),
            results_not_saved_across_the_restart=sum(
                text.count("Could not save task result") for text in across_restart.values()
            ),
            jobs_failed_once_it_was_back=sum(failed(text) for text in after_it.values()),
            jobs_done_after_the_restart_by_a_and_b=(
                f"{done_after_restart['a']} / {done_after_restart['b']}"
            ),
            claims_left_by_the_restart=claims_left_by_restart,
            jobs_done_by_cluster_a=done["a"],
            jobs_done_by_cluster_b=done["b"],
            claims_left_by_the_killed_workers=orphaned_claims,
            ready_when_a_was_killed=ready_at_kill,
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

        assert done["a"] > 0 and done["b"] > 0, "both clusters worked"
        for key in "ab":
            assert done_after_restart[key] > 0, f"cluster {key} went on after the restart"
            assert after_last_failure[key] > 0, f"cluster {key} went on after its failed jobs"
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
