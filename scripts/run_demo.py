#!/usr/bin/env python
"""Run the example site: the development server and a django-q2 worker, side by side.

``make demo`` migrates, loads the demo data and then runs this script. It starts
``manage.py runserver`` and ``manage.py qcluster`` with this same Python, prints
where to go and how to log in, and stops both on Ctrl+C (or SIGTERM). If either
one stops by itself, the other is stopped too and the script exits non-zero.

Options: ``--port`` (default 8000, or $DEMO_PORT) and ``--no-reload``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess  # noqa: S404 - runs this project's own manage.py
import sys
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "manage.py"
HOST = "127.0.0.1"
STOP_GRACE_SECONDS = 10.0


class Child:
    """A child process in its own process group, so that it and its helpers stop together."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], *, stop_leader_only: bool = False
    ) -> None:
        self.name = name
        # qcluster stops its own workers cleanly when only its main process is told to stop;
        # the autoreloading server needs its whole group told (the reloader's child too).
        self.stop_leader_only = stop_leader_only
        self.process = subprocess.Popen(  # noqa: S603 - fixed arguments, no shell
            [sys.executable, str(MANAGE), *args],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def request_stop(self) -> None:
        if self.stop_leader_only:
            self.process.send_signal(signal.SIGTERM)
        else:
            self.signal_group(signal.SIGTERM)

    def wait(self, timeout: float) -> bool:
        """Wait until the process has exited; return whether it did within ``timeout``."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True


def port_is_free(port: int) -> bool:
    """Return whether nothing listens on ``HOST:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((HOST, port)) != 0


def wait_for_server(port: int, children: list[Child], timeout: float = 60.0) -> bool:
    """Wait until the server accepts connections; False if a child died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not all(child.running for child in children):
            return False
        if not port_is_free(port):
            return True
        time.sleep(0.2)
    return False


def stop_all(children: list[Child]) -> None:
    """Ask every child to stop, then make sure they have."""
    for child in children:
        if child.running:
            child.request_stop()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children:
        child.wait(max(0.0, deadline - time.monotonic()))
    for child in children:
        # Whatever is left of the group (a stuck worker, the reloader's child) goes now.
        child.signal_group(signal.SIGKILL)
        child.wait(1.0)


def banner(port: int) -> str:
    site = f"http://{HOST}:{port}/"
    lines = [
        "",
        "Riverside Wellbeing Studio (the wagtail-bookings-vc demo) is running.",
        "",
        f"  Site              {site}",
        f"  Admin             {site}admin/      log in as admin / admin",
        f"  Member            {site}accounts/login/      member / member (Maria Rossi)",
        "                    a second member: member2 / member2 (Luca Ferri)",
        f"  Staff             {site}admin/      staff / staff (Giulia Bianchi)",
        "",
        "  A background worker (django-q2) sends emails and makes meeting links;",
        "  emails are printed in this terminal.",
        "",
        "  Ctrl+C stops everything.",
        "",
    ]
    rule = "=" * 78
    return "\n".join([rule, *lines, rule])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the example site with a worker.")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("DEMO_PORT", "8000")), help="default 8000"
    )
    parser.add_argument(
        "--no-reload",
        action="store_true",
        help="do not restart the server when a Python file changes",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start the server and the worker, and keep them running until one stops or we are told to."""
    options = parse_args(sys.argv[1:] if argv is None else argv)
    if not port_is_free(options.port):
        sys.stderr.write(
            f"Port {options.port} is already in use. Stop whatever runs there, or run "
            f"`make demo DEMO_PORT=8001` (or scripts/run_demo.py --port 8001).\n"
        )
        return 1

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.setdefault("DJANGO_SETTINGS_MODULE", "example_site.settings.dev")
    env.setdefault("WAGTAILADMIN_BASE_URL", f"http://{HOST}:{options.port}")

    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)

    server_args = ["runserver", f"{HOST}:{options.port}"]
    if options.no_reload:
        server_args.append("--noreload")
    children = [
        Child("worker", ["qcluster"], env, stop_leader_only=True),
        Child("server", server_args, env),
    ]

    exit_code = 0
    try:
        if wait_for_server(options.port, children):
            sys.stdout.write(banner(options.port) + "\n")
            sys.stdout.flush()
        while not stopping:
            dead = [child for child in children if not child.running]
            if dead:
                for child in dead:
                    sys.stderr.write(
                        f"\nThe {child.name} stopped (exit code {child.process.returncode}); "
                        "stopping the demo.\n"
                    )
                exit_code = 1
                break
            time.sleep(0.3)
    finally:
        if stopping:
            sys.stdout.write("\nStopping the server and the worker…\n")
            sys.stdout.flush()
        stop_all(children)
    if stopping and exit_code == 0:
        sys.stdout.write("Stopped.\n")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
