"""The personal join link: ``/bookings/join/<token>/`` checks at click time, then redirects."""

from __future__ import annotations

import re

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET
from django.views.defaults import page_not_found

from .meetings import decide_join
from .models import JoinPass

# No page of ours ever links the provider URL: it reaches the browser only in this
# redirect, and neither it nor the token may travel on as a Referer or sit in a cache.
PRIVATE_HEADERS = {"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}
# What a token can look like (``secrets.token_urlsafe``); anything else is not looked up,
# so that no odd byte (PostgreSQL refuses NUL) turns a guess into a server error.
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{20,64}")


def _private(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)
    for header, value in PRIVATE_HEADERS.items():
        response[header] = value
    return response


def _not_found(request: HttpRequest) -> HttpResponse:
    # The site's own 404 page, kept out of caches: an unpaid booking's link opens once it
    # is paid, and a cached "not found" must not outlive that.
    return _private(page_not_found(request, Http404()))


@require_GET
def join(request: HttpRequest, token: str) -> HttpResponse:
    """Send the holder of a join pass to their meeting, or tell them when it opens (R22).

    An unknown, revoked or not (yet) allowed pass answers 404 with nothing that tells a
    guesser whether a booking exists.
    """
    if not TOKEN_RE.fullmatch(token):
        return _not_found(request)
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
        return _not_found(request)
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
