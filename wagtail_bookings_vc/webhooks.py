"""The public endpoint providers post their webhooks to: ``/webhooks/<provider id>/``.

The provider checks the signature over the raw body and turns the call into events;
:func:`meetings.apply_webhook_event` applies them. Nothing a webhook says is trusted
before its provider has verified it.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import meetings
from .providers import WebhookRejected, get_provider

logger = logging.getLogger(__name__)

#: Webhook bodies are small; a larger one is not from a provider.
MAX_BODY_BYTES = 256 * 1024


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, provider_id: str) -> HttpResponse:
    """Check a provider's webhook call, apply its events and answer as the provider asks."""
    try:
        provider = get_provider(provider_id)
    except ImproperlyConfigured as error:
        raise Http404 from error
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > MAX_BODY_BYTES:
        return HttpResponse(status=413)
    try:
        reply = provider.handle_webhook(request.headers, request.body)
    except NotImplementedError as error:
        raise Http404 from error
    except WebhookRejected as error:
        logger.warning("Refused a %s webhook call: %s", provider_id, error)
        return HttpResponse(status=error.status)
    for event in reply.events:
        meetings.apply_webhook_event(provider.id, event)
    if reply.data is not None:
        return JsonResponse(dict(reply.data), status=reply.status)
    return HttpResponse(status=reply.status)
