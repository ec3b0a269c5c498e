"""Loopback fake servers for provider APIs, with fault knobs.

A :class:`FakeServer` is a real HTTP server on 127.0.0.1 and a free port, run in a thread,
so provider code is tested through its real HTTP stack (timeouts included). Subclasses add
a provider's routes with :func:`route`; tests add one-off routes with
:meth:`FakeServer.add_route`, turn faults on, and read what was sent from
:attr:`FakeServer.requests`::

    class FakeWhereby(FakeServer):
        @route("POST", "/v1/meetings")
        def create(self, request):
            return json_reply({"meetingId": "1", "roomUrl": "https://whereby.com/r"}, status=201)

    with FakeWhereby() as server:
        server.fail_next(2, status=503)
        ...  # point the provider at server.url
        assert server.requests[-1].json()["endDate"]

Fault knobs (each applies to the next matching calls, in the order they were set):
:meth:`~FakeServer.fail_next`, :meth:`~FakeServer.rate_limit_next`,
:meth:`~FakeServer.timeout_next`, :meth:`~FakeServer.expire_tokens`; and
:meth:`~FakeServer.add_latency` for every call. Only for tests and local demos: it binds to
the loopback interface and checks nothing.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import re
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from requests.structures import CaseInsensitiveDict

from ..providers.http import redact_url

__all__ = [
    "FakeServer",
    "RecordedRequest",
    "Reply",
    "empty_reply",
    "fake_server_fixture",
    "json_reply",
    "route",
    "text_reply",
]

logger = logging.getLogger(__name__)

Handler = Callable[..., Any]


# --------------------------------------------------------------------------------------
# Requests and replies
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake server received it.

    Attributes:
        method: Upper-case HTTP method.
        path: The path, without the query string.
        query: Query parameters, each with the list of its values.
        headers: Headers, looked up case-insensitively.
        body: The raw body.
    """

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str, default: str = "") -> str:
        """Return one header's value."""
        return self.headers.get(name, default)

    def query_value(self, name: str, default: str | None = None) -> str | None:
        """Return the first value of one query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def text(self) -> str:
        """The body as text."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` if it is not)."""
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        """The body parsed as a form, one value per field."""
        return {key: values[0] for key, values in parse_qs(self.text, True).items()}


@dataclasses.dataclass
class Reply:
    """What the fake server answers."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


def json_reply(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    """Return a JSON reply."""
    return Reply(
        status,
        json.dumps(data).encode("utf-8"),
        {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
    )


def text_reply(
    text: str,
    status: int = 200,
    content_type: str = "text/plain; charset=utf-8",
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """Return a text reply."""
    return Reply(status, text.encode("utf-8"), {"Content-Type": content_type, **(headers or {})})


def empty_reply(status: int = 204, headers: Mapping[str, str] | None = None) -> Reply:
    """Return a reply without a body (204 by default)."""
    return Reply(status, b"", dict(headers or {}))


def _as_reply(result: Any) -> Reply:
    if isinstance(result, Reply):
        return result
    if result is None:
        return empty_reply()
    if isinstance(result, tuple):
        status, data = result
        return data if isinstance(data, Reply) else json_reply(data, status)
    return json_reply(result)


# --------------------------------------------------------------------------------------
# Routes and faults
# --------------------------------------------------------------------------------------


def _compile(pattern: str) -> re.Pattern[str]:
    if pattern.startswith("^"):
        return re.compile(pattern)
    parts = re.split(r"\{(\w+)\}", pattern)
    regex = "".join(
        f"(?P<{part}>[^/]+)" if index % 2 else re.escape(part) for index, part in enumerate(parts)
    )
    return re.compile(f"^{regex}$")


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Mark a :class:`FakeServer` method as the handler of ``method`` + ``pattern``.

    ``pattern`` is a path with ``{name}`` placeholders (one path segment each, passed to the
    handler as keyword arguments), or a regular expression starting with ``^``. ``method``
    may be ``"*"``. The handler gets the :class:`RecordedRequest` and returns a
    :class:`Reply`, a JSON-able value (200), ``(status, value)``, or ``None`` (204).
    """

    def decorator(function: Handler) -> Handler:
        routes = list(getattr(function, "_fake_routes", ()))
        routes.append((method.upper(), pattern))
        function._fake_routes = routes  # type: ignore[attr-defined]
        return function

    return decorator


@dataclasses.dataclass
class _Route:
    method: str
    regex: re.Pattern[str]
    handler: Handler


@dataclasses.dataclass
class _Fault:
    kind: str
    remaining: int
    path: str | None = None
    status: int = 503
    retry_after: str | None = None
    seconds: float = 0.0
    process: bool = True
    reply: Reply | None = None

    def matches(self, request: RecordedRequest) -> bool:
        return self.path is None or request.path.startswith(self.path)


class _RequestHandler(BaseHTTPRequestHandler):
    fake: FakeServer  # set on the per-server subclass
    server_version = "FakeProvider/1.0"

    def _handle(self) -> None:
        self.fake._serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def log_message(self, format: str, *args: Any) -> None:
        # Not the request line: its query string may hold a test's secrets.
        logger.debug(
            "fake server: %s %s",
            getattr(self, "command", "?"),
            redact_url(getattr(self, "path", "")),
        )

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


# --------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------


class FakeServer:
    """A real HTTP server on 127.0.0.1 that plays a provider's API in tests.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`). Subclasses add
    routes with :func:`route` and may override the ``*_reply`` methods to answer faults in
    the provider's own error format.

    Attributes:
        requests: Every request received, in order, faulted ones included.
        errors: Exceptions raised by handlers (each also answered with a 500).
    """

    host = "127.0.0.1"

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl_context = ssl_context
        self._routes: list[_Route] = []
        self._faults: collections.deque[_Fault] = collections.deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._latency = 0.0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[RecordedRequest] = []
        self.errors: list[BaseException] = []
        for name in dir(type(self)):
            function = getattr(type(self), name, None)
            for method, pattern in getattr(function, "_fake_routes", ()):
                self.add_route(method, pattern, getattr(self, name))

    # Life cycle ----------------------------------------------------------------------

    def start(self) -> FakeServer:
        """Start serving in a background thread; returns ``self``."""
        if self._httpd is not None:
            return self
        handler = type("Handler", (_RequestHandler,), {"fake": self})
        httpd = ThreadingHTTPServer((self.host, 0), handler)
        httpd.daemon_threads = True
        if self._ssl_context is not None:
            httpd.socket = self._ssl_context.wrap_socket(httpd.socket, server_side=True)
        self._stopping.clear()
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; requests still sleeping in a fault or latency end at once."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._httpd is None:
            raise RuntimeError("The fake server is not running.")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, such as ``http://127.0.0.1:54321`` (no trailing slash)."""
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def url_for(self, path: str) -> str:
        """Return the absolute URL of ``path`` on this server."""
        return self.url + (path if path.startswith("/") else f"/{path}")

    # Routes --------------------------------------------------------------------------

    def add_route(self, method: str, pattern: str, handler: Handler) -> None:
        """Answer ``method`` + ``pattern`` with ``handler`` (see :func:`route`).

        Routes added later win, so a test can replace a subclass's route.
        """
        with self._lock:
            self._routes.insert(0, _Route(method.upper(), _compile(pattern), handler))

    # Recorded requests ---------------------------------------------------------------

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request (``IndexError`` if none)."""
        with self._lock:
            return self.requests[-1]

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        """Return the requests with this method and a path matching ``path``'s pattern."""
        regex = _compile(path)
        with self._lock:
            return [r for r in self.requests if r.method == method.upper() and regex.match(r.path)]

    def clear(self) -> None:
        """Forget recorded requests and handler errors."""
        with self._lock:
            self.requests.clear()
            self.errors.clear()

    def raise_errors(self) -> None:
        """Re-raise the first exception a handler raised, if any (for tests)."""
        with self._lock:
            if self.errors:
                raise self.errors[0]

    # Fault knobs ---------------------------------------------------------------------

    def _add_fault(self, fault: _Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("A fault applies to at least one call.")
        with self._lock:
            self._faults.append(fault)

    def fail_next(
        self, n: int = 1, status: int = 503, *, path: str | None = None, reply: Reply | None = None
    ) -> None:
        """Answer the next ``n`` calls with ``status`` (and :meth:`error_reply`'s body).

        Args:
            n: How many calls fail.
            status: The status to answer with, usually a 5xx.
            path: Only calls whose path starts with this.
            reply: A reply to send instead of :meth:`error_reply`.
        """
        self._add_fault(_Fault("status", n, path=path, status=status, reply=reply))

    def rate_limit_next(
        self,
        n: int = 1,
        retry_after: float | str | None = 30,
        *,
        status: int = 429,
        path: str | None = None,
    ) -> None:
        """Answer the next ``n`` calls with 429 and ``Retry-After`` (left out when ``None``)."""
        value = None if retry_after is None else str(retry_after)
        self._add_fault(_Fault("rate_limit", n, path=path, status=status, retry_after=value))

    def timeout_next(
        self, n: int = 1, seconds: float = 2.0, *, path: str | None = None, process: bool = True
    ) -> None:
        """Hold the next ``n`` calls for ``seconds`` before answering.

        Pick ``seconds`` longer than the client's read timeout. With ``process`` (the
        default) the call is then handled as usual, so its effect happens although the
        client never sees the answer, as when a connection drops after the provider
        created a meeting; with ``process=False`` it is dropped.
        """
        self._add_fault(_Fault("timeout", n, path=path, seconds=seconds, process=process))

    def expire_tokens(self, n: int = 1, *, path: str | None = None) -> None:
        """Answer the next ``n`` calls with 401 (:meth:`unauthorized_reply`).

        Subclasses that keep a token store may also invalidate it here.
        """
        self._add_fault(_Fault("unauthorized", n, path=path, status=401))

    def add_latency(self, seconds: float) -> None:
        """Hold every call ``seconds`` longer from now on (0 to stop)."""
        with self._lock:
            self._latency = max(float(seconds), 0.0)

    def reset_faults(self) -> None:
        """Drop every pending fault and the latency."""
        with self._lock:
            self._faults.clear()
            self._latency = 0.0

    @property
    def pending_faults(self) -> int:
        """How many faulted calls are still to come."""
        with self._lock:
            return sum(fault.remaining for fault in self._faults)

    # Replies subclasses may give their provider's shape --------------------------------

    def error_reply(self, status: int) -> Reply:
        """The reply of :meth:`fail_next`."""
        return json_reply({"error": {"code": status, "message": "Injected failure."}}, status)

    def rate_limited_reply(self, status: int, retry_after: str | None) -> Reply:
        """The reply of :meth:`rate_limit_next`."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return json_reply(
            {"error": {"code": status, "message": "Too many requests."}}, status, headers
        )

    def unauthorized_reply(self) -> Reply:
        """The reply of :meth:`expire_tokens`."""
        return json_reply({"error": {"code": 401, "message": "Access token is expired."}}, 401)

    def not_found_reply(self, request: RecordedRequest) -> Reply:
        """The reply for a path no route matches."""
        return json_reply(
            {"error": {"code": 404, "message": f"No route for {request.method} {request.path}."}},
            404,
        )

    # Serving -------------------------------------------------------------------------

    def _next_fault(self, request: RecordedRequest) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(request):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def dispatch(self, request: RecordedRequest) -> Reply:
        """Answer ``request`` from the routes (no faults). Subclasses rarely override it."""
        with self._lock:
            routes = list(self._routes)
        for candidate in routes:
            if candidate.method not in (request.method, "*"):
                continue
            match = candidate.regex.match(request.path)
            if match:
                return _as_reply(candidate.handler(request, **match.groupdict()))
        return self.not_found_reply(request)

    def _serve(self, http: _RequestHandler) -> None:
        parts = urlsplit(http.path)
        request = RecordedRequest(
            method=http.command.upper(),
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=CaseInsensitiveDict(dict(http.headers.items())),
            body=http.read_body(),
        )
        with self._lock:
            self.requests.append(request)
            latency = self._latency
        if latency and self._stopping.wait(latency):
            return
        fault = self._next_fault(request)
        reply: Reply | None
        try:
            reply = self._apply(fault, request) if fault else self.dispatch(request)
        except Exception as exc:  # noqa: BLE001  (a handler bug becomes a 500 the test sees)
            with self._lock:
                self.errors.append(exc)
            logger.exception("fake server handler failed for %s %s", request.method, request.path)
            reply = json_reply({"error": {"code": 500, "message": repr(exc)}}, 500)
        if reply is not None:
            self._write(http, reply)

    def _apply(self, fault: _Fault, request: RecordedRequest) -> Reply | None:
        if fault.kind == "status":
            return fault.reply or self.error_reply(fault.status)
        if fault.kind == "rate_limit":
            return self.rate_limited_reply(fault.status, fault.retry_after)
        if fault.kind == "unauthorized":
            return self.unauthorized_reply()
        # A timeout: hold the call, then handle it (its effect happens) or drop it.
        if self._stopping.wait(fault.seconds) or not fault.process:
            return None
        return self.dispatch(request)

    @staticmethod
    def _write(http: _RequestHandler, reply: Reply) -> None:
        try:
            http.send_response(reply.status)
            headers = {"Content-Length": str(len(reply.body)), **reply.headers}
            for name, value in headers.items():
                http.send_header(name, value)
            http.end_headers()
            if reply.body and http.command != "HEAD":
                http.wfile.write(reply.body)
        except OSError:
            # The client has gone (it timed out): nobody is left to answer.
            pass


def fake_server_fixture(
    server_class: type[FakeServer] = FakeServer, *, scope: str = "function", **kwargs: Any
) -> Any:
    """Return a pytest fixture that runs ``server_class`` for each test (or ``scope``).

    In a test module: ``fake_zoom = fake_server_fixture(FakeZoom)``.
    """
    import pytest

    @pytest.fixture(scope=scope)  # type: ignore[misc]
    def _fixture() -> Iterator[FakeServer]:
        with server_class(**kwargs) as server:
            yield server

    return _fixture
