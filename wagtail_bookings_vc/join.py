"""The personal join link: ``/bookings/join/<token>/`` checks at click time, then redirects.

Guessing is throttled: a client that asks for more than ``JOIN_GUESSES_PER_MINUTE``
(setting, default 20; 0 turns it off) unknown tokens within a minute gets 429 for every
join link until that minute is over. Known tokens never count towards the limit, so
members clicking their own links never cause it. Once a client is refused, its known
tokens are refused too: a throttle that still let them through would tell a guesser
exactly which guess was right. The count lives in Django's cache, so sites with several
server processes need a shared cache (Redis, Memcached, the database) for the limit to
hold across them.
"""

from __future__ import annotations

import hashlib
import re
import time

from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET
from django.views.defaults import page_not_found

from .conf import get_settings
from .meetings import decide_join
from .models import JoinPass

# No page of ours ever links the provider URL: it reaches the browser only in this
# redirect, and neither it nor the token may travel on as a Referer or sit in a cache.
PRIVATE_HEADERS = {"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}
# What a token can look like (``secrets.token_urlsafe``); anything else is not looked up,
# so that no odd byte (PostgreSQL refuses NUL) turns a guess into a server error.
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{20,64}")

DEFAULT_GUESSES_PER_MINUTE = 20
GUESS_WINDOW_SECONDS = 60


def _private(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)
    for header, value in PRIVATE_HEADERS.items():
        response[header] = value
    return response


def _not_found(request: HttpRequest) -> HttpResponse:
    # The site's own 404 page, kept out of caches: an unpaid booking's link opens once it
    # is paid, and a cached "not found" must not outlive that.
    return _private(page_not_found(request, Http404()))


def guess_limit() -> int:
    """Unknown tokens a client may try per minute (0: no limit)."""
    value = get_settings().values.get("JOIN_GUESSES_PER_MINUTE", DEFAULT_GUESSES_PER_MINUTE)
    return max(int(value or 0), 0)


def _guess_key(request: HttpRequest) -> tuple[str, int]:
    """The cache key counting this client's unknown tokens in the current minute.

    Returns the key and the seconds left in the minute.
    """
    # Hashed, so that any address (IPv6 colons included) fits every cache's key rules.
    client = hashlib.sha256(request.META.get("REMOTE_ADDR", "").encode()).hexdigest()[:32]
    now = time.time()
    window = int(now // GUESS_WINDOW_SECONDS)
    left = max(int((window + 1) * GUESS_WINDOW_SECONDS - now), 1)
    return f"wagtail_bookings_vc:join-guesses:{client}:{window}", left


def _throttled(request: HttpRequest, limit: int) -> int:
    """Seconds the client must wait, or 0 when it may ask for a join link now."""
    if not limit:
        return 0
    key, left = _guess_key(request)
    return left if (cache.get(key) or 0) >= limit else 0


def _count_guess(request: HttpRequest, limit: int) -> None:
    if not limit:
        return
    key, _left = _guess_key(request)
    if cache.add(key, 1, timeout=GUESS_WINDOW_SECONDS * 2):
        return
    try:
        cache.incr(key)
    except ValueError:
        # Expired between the two calls: this guess starts a new count.
        cache.add(key, 1, timeout=GUESS_WINDOW_SECONDS * 2)


def _too_many(wait: int) -> HttpResponse:
    response = HttpResponse(
        _("Too many attempts to open a join link. Try again in a minute."),
        status=429,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = str(wait)
    return _private(response)


def _unknown(request: HttpRequest, limit: int) -> HttpResponse:
    _count_guess(request, limit)
    return _not_found(request)


@require_GET
def join(request: HttpRequest, token: str) -> HttpResponse:
    """Send the holder of a join pass to their meeting, or tell them when it opens (R22).

    An unknown, revoked or not (yet) allowed pass answers 404 with nothing that tells a
    guesser whether a booking exists. A client that tried too many unknown tokens gets
    429 for a while (see the module's docstring).
    """
    limit = guess_limit()
    wait = _throttled(request, limit)
    if wait:
        return _too_many(wait)
    if not TOKEN_RE.fullmatch(token):
        return _unknown(request, limit)
    join_pass = (
        JoinPass.objects.select_related(
            "booking__service",
            "booking__staff",
            "booking__session__group_class",
            "session__group_class__staff",
        )
        .filter(token=token)
        .first()
    )
    if join_pass is None:
        return _unknown(request, limit)
    decision = decide_join(join_pass)
    if decision.status == "unavailable":
        return _not_found(request)
    if decision.status == "go":
        return _private(HttpResponseRedirect(decision.url))
    response = TemplateResponse(
        request,
        "wagtail_bookings_vc/join.html",
        {
            "decision": decision,
            "now": timezone.now(),
            "zone": decision.time_zone or timezone.get_current_timezone_name(),
        },
    )
    return _private(response)
