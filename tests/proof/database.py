"""Restart the PostgreSQL server the tests run on, for real, and wait until it is back.

The server must be a cluster of this machine that Debian's ``pg_lsclusters`` lists (found
by its data directory) and that this user may restart with ``pg_ctlcluster``: root or the
cluster's owner. :func:`local_cluster` says why not otherwise. :func:`restart` restarts it
in *fast* mode, which ends every session, as a crash-free restart of a production server
does; whatever goes wrong, it leaves the server running.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import shutil
import subprocess
import threading
import time
from typing import Any

import psycopg

#: Hosts that are this machine (an empty host or a path is the local socket).
LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}
#: Seconds between two connection attempts of the probe that times the outage.
PROBE_INTERVAL = 0.02


class CannotRestart(Exception):
    """The server cannot be restarted from here; the message says why."""


class RestartFailed(Exception):
    """The restart did not go through (the server was left running)."""


@dataclasses.dataclass(frozen=True)
class Cluster:
    """A PostgreSQL cluster of this machine, as ``pg_lsclusters`` lists it."""

    version: str
    name: str
    port: int
    data_directory: str
    owner: str
    host: str

    def command(self, action: str, *options: str) -> list[str]:
        """The ``pg_ctlcluster`` command line that applies ``action`` to this cluster."""
        return [
            _tool("pg_ctlcluster"),
            "--skip-systemctl-redirect",
            *options,
            self.version,
            self.name,
            action,
        ]

    def __str__(self) -> str:
        return f"{self.version}/{self.name}"


@dataclasses.dataclass(frozen=True)
class Outage:
    """What a restart cost.

    Attributes:
        seconds_down: How long new connections were refused (timed by a probe).
        seconds_to_ready: From the restart command to the server accepting connections.
        command: The restart command, as run.
    """

    seconds_down: float
    seconds_to_ready: float
    command: str


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise CannotRestart(f"{name} is not installed (Debian's postgresql-common has it)")
    return path


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - PostgreSQL's own tools, arguments of our own
        args, capture_output=True, text=True, timeout=timeout, check=False
    )


def local_cluster(connection: Any) -> Cluster:
    """The cluster that serves ``connection`` (a Django connection to PostgreSQL).

    Raises:
        CannotRestart: The server is elsewhere, not a Debian cluster, or not ours to
            restart.
    """
    host = str(connection.settings_dict.get("HOST") or "")
    if host not in LOCAL_HOSTS and not host.startswith("/"):
        raise CannotRestart(f"the database server is on {host}, not on this machine")
    listing = _run([_tool("pg_lsclusters"), "--no-header"], timeout=30)
    _tool("pg_ctlcluster")
    with connection.cursor() as cursor:
        cursor.execute("SHOW data_directory")
        data_directory = cursor.fetchone()[0]
        cursor.execute("SHOW port")
        port = int(cursor.fetchone()[0])
    for line in listing.stdout.splitlines():
        # Ver Cluster Port Status Owner Data-directory Log-file
        fields = line.split()
        if len(fields) >= 6 and fields[5] == data_directory and int(fields[2]) == port:
            cluster = Cluster(fields[0], fields[1], port, data_directory, fields[4], host)
            break
    else:
        raise CannotRestart(
            f"no cluster in pg_lsclusters has the data directory {data_directory} on port {port}"
        )
    euid = os.geteuid()
    if euid != 0 and euid != pwd.getpwnam(cluster.owner).pw_uid:
        raise CannotRestart(f"only root or {cluster.owner} may restart cluster {cluster}")
    return cluster


def is_ready(cluster: Cluster) -> bool:
    """Whether the server accepts connections (``pg_isready``)."""
    where = ["-h", cluster.host] if cluster.host else []
    return _run([_tool("pg_isready"), "-q", *where, "-p", str(cluster.port)], 10).returncode == 0


def wait_ready(cluster: Cluster, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the server to accept connections."""
    deadline = time.monotonic() + timeout
    while not is_ready(cluster):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


class _Probe(threading.Thread):
    """Connect again and again, noting when connections start and stop being refused."""

    def __init__(self, conninfo: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.conninfo = conninfo
        self.down_at: float | None = None
        self.up_at: float | None = None
        self.finished = threading.Event()

    def run(self) -> None:
        while not self.finished.is_set():
            try:
                psycopg.connect(**self.conninfo, connect_timeout=2).close()
            except psycopg.Error:
                if self.down_at is None:
                    self.down_at = time.monotonic()
            else:
                if self.down_at is not None and self.up_at is None:
                    self.up_at = time.monotonic()
            time.sleep(PROBE_INTERVAL)

    def seconds_down(self) -> float:
        if self.down_at is None:
            return 0.0
        return (self.up_at or time.monotonic()) - self.down_at


def restart(cluster: Cluster, conninfo: dict[str, Any], timeout: float = 120) -> Outage:
    """Restart ``cluster`` in fast mode and wait until it accepts connections again.

    Every session ends. ``conninfo`` (``psycopg.connect`` arguments) is what the probe
    that times the outage connects with. If the restart fails, the cluster is started
    again before :class:`RestartFailed` is raised; it is never left stopped by this
    function.
    """
    command = cluster.command("restart", "--mode", "fast")
    probe = _Probe(conninfo)
    probe.start()
    began = time.monotonic()
    problem = ""
    try:
        done = _run(command, timeout)
        if done.returncode != 0:
            problem = f"exit status {done.returncode}: {(done.stderr or done.stdout).strip()}"
    except subprocess.TimeoutExpired:
        problem = f"no answer in {timeout} seconds"
    finally:
        back = wait_ready(cluster, 30)
        if not back:
            # Stopped but not started again (or interrupted): start it in every case.
            _run(cluster.command("start"), timeout)
            back = wait_ready(cluster, 60)
        ready_after = time.monotonic() - began
        # The probe sees the server back a moment after pg_isready does.
        deadline = time.monotonic() + 5
        while back and probe.down_at is not None and probe.up_at is None:
            if time.monotonic() > deadline:
                break
            time.sleep(PROBE_INTERVAL)
        probe.finished.set()
        probe.join(timeout=10)
    if problem or not back:
        state = "running" if back else "NOT running: start it by hand"
        raise RestartFailed(
            f"{' '.join(command)} failed ({problem or 'not ready again'}); the server is {state}"
        )
    return Outage(
        seconds_down=round(probe.seconds_down(), 2),
        seconds_to_ready=round(ready_after, 2),
        command=" ".join(["pg_ctlcluster", *command[1:]]),
    )
