"""Start and stop the processes a proof test runs beside itself (workers, a web server)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def worker_env(**extra: str) -> dict[str, str]:
    """The environment of a process that shares this test's database and keys."""
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.proof.worker_settings",
        BVC_PROOF_DB_NAME=str(connection.settings_dict["NAME"]),
        BVC_PROOF_KEYS=",".join(settings.WAGTAIL_BOOKINGS_VC["ENCRYPTION_KEYS"]),
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``python *args`` in a process group of its own, its output going to ``log``."""
    with log.open("wb") as output:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            [sys.executable, *args],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and every process it started (its group), at once."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def stop(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """Ask the process group to stop (SIGTERM); SIGKILL it if it has not within ``timeout``."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    # Children of a stopped parent may linger: the group goes in every case.
    kill(process)


def log_mark(log: Path) -> int:
    """Where ``log`` ends now: :func:`log_text` from here reads what came after."""
    return log.stat().st_size if log.exists() else 0


def log_text(log: Path, since: int = 0, until: int | None = None) -> str:
    """What a process wrote to ``log`` between two :func:`log_mark` (to its end by default)."""
    with log.open("rb") as output:
        output.seek(since)
        data = output.read() if until is None else output.read(max(0, until - since))
    return data.decode(errors="replace")


@contextlib.contextmanager
def running(processes: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    """Make sure every process in ``processes`` (which may grow) is gone at the end."""
    try:
        yield
    finally:
        for process in processes:
            stop(process, timeout=5)


def signed_in(users: list[Any]) -> list[Any]:
    """One HTTP browser (``requests.Session``) per user, signed in to a server on this
    database: the session is made as a log-in would make it."""
    import requests
    from django.test import Client

    browsers = []
    for user in users:
        client = Client()
        client.force_login(user)
        browser = requests.Session()
        browser.trust_env = False
        browser.cookies.set("sessionid", client.cookies["sessionid"].value)
        browsers.append(browser)
    return browsers
