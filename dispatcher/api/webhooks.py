"""`/v1/webhooks`: the providers' status reports and replies coming in, and our callbacks' dead letters.

Each provider endpoint does the same four steps: verify the request is the provider's (its shared
secret or signature; a forged or unsigned request changes nothing: 401/403), parse it into status
reports and replies (a body we cannot read: 400), then apply each report (duplicates dropped,
statuses only forward) and pass each reply on. A report for a message we do not know is answered
200 with a warning in the log, so the provider stops retrying it.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, request

from dispatcher.api import context
from dispatcher.api.auth import require_any_key, scope
from dispatcher.api.errors import ApiError
from dispatcher.api.openapi import Answer, documented, paging, query
from dispatcher.api.request_input import int_arg, refuse_unsafe_json
from providers import evolution_inbound, meta_inbound, twilio_inbound
from providers.inbound import InboundEvent, IncomingMessage, WebhookMalformed, WebhookRejected

blueprint = Blueprint("webhooks", __name__)
EVOLUTION_SECRET_HEADER = "X-Webhook-Secret"
PAGE_MAX = 500
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _refused(error: WebhookRejected) -> ApiError:
    code = "unauthorized" if error.status == 401 else "forbidden"
    return ApiError(error.status, error.message, code)


def _apply(events: list[InboundEvent]) -> dict:
    """Apply the reports and pass the replies on; the answer counts what became of them."""
    reports = context.services().reports
    outcomes: dict[str, int] = {}
    for event in events:
        outcome = reports.receive(event) if isinstance(event, IncomingMessage) else reports.apply(event)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return {"received": len(events), "outcomes": outcomes}


def _json_body() -> object:
    try:
        payload = json.loads(request.get_data(cache=True))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "The webhook body must be JSON", "malformed_json", field="body") from None
    refuse_unsafe_json(payload)
    return payload


def _parsed(parse, payload) -> list[InboundEvent]:
    try:
        return parse(payload)
    except WebhookMalformed as malformed:
        raise ApiError(400, str(malformed), "invalid_webhook", field="body") from None


@blueprint.post("/v1/webhooks/evolution")
@documented(
    body={"type": "object", "description": "An Evolution event: {event, instance, data}"},
    answers={
        200: "Verified and applied (a report before our sent is kept, and applied then)",
        400: "Not an Evolution event",
        401: "No secret",
        403: "Wrong secret, or EVOLUTION_WEBHOOK_SECRET not set",
    },
)
def evolution():
    """Evolution API webhook: its events messages.update and messages.upsert.

    Set it on each instance with `POST /webhook/set/<instance>`, events MESSAGES_UPDATE and
    MESSAGES_UPSERT, and header `X-Webhook-Secret: <EVOLUTION_WEBHOOK_SECRET>` (or add
    `?token=<EVOLUTION_WEBHOOK_SECRET>` to the URL where headers cannot be set).
    """
    given = request.headers.get(EVOLUTION_SECRET_HEADER) or request.args.get("token")
    try:
        evolution_inbound.verify(context.services().settings.inbound.evolution_secret, given)
    except WebhookRejected as rejected:
        raise _refused(rejected) from None
    return jsonify(_apply(_parsed(evolution_inbound.parse, _json_body())))


def _twilio_url() -> str:
    """The URL Twilio signed: the one we gave it (PUBLIC_BASE_URL...) with the query it called, since
    behind a proxy the URL we see is not the one Twilio called."""
    configured = context.services().settings.inbound.twilio_webhook_url
    if not configured:
        return request.url
    query = urlsplit(request.url).query
    return f"{configured}?{query}" if query else configured


@blueprint.post("/v1/webhooks/twilio")
@documented(
    body={"type": "object", "additionalProperties": {"type": "string"}},
    body_media_type="application/x-www-form-urlencoded",
    answers={
        200: Answer("Verified and applied; an empty TwiML answer", {"type": "string"}, "text/xml"),
        400: "Not a Twilio message post",
        401: "No signature",
        403: "Wrong signature, or TWILIO_AUTH_TOKEN not set",
    },
)
def twilio():
    """Twilio webhook: StatusCallback posts and incoming WhatsApp messages.

    Messages we send carry `StatusCallback=PUBLIC_BASE_URL/v1/webhooks/twilio`; point the sender's
    "A message comes in" webhook at the same URL for replies. Verified with `X-Twilio-Signature`
    (HMAC-SHA1 of the URL and the form, keyed by TWILIO_AUTH_TOKEN).
    """
    params = list(request.form.items(multi=True))
    try:
        twilio_inbound.verify(
            context.services().settings.inbound.twilio_auth_token,
            _twilio_url(),
            params,
            request.headers.get("X-Twilio-Signature"),
        )
    except WebhookRejected as rejected:
        raise _refused(rejected) from None
    _apply(_parsed(twilio_inbound.parse, request.form.to_dict()))
    return Response(EMPTY_TWIML, 200, mimetype="text/xml")


@blueprint.get("/v1/webhooks/meta")
@documented(
    query=(query("hub.mode"), query("hub.verify_token"), query("hub.challenge")),
    answers={
        200: Answer("The challenge, echoed", {"type": "string"}, "text/plain"),
        403: "Wrong verify token, or META_WEBHOOK_VERIFY_TOKEN not set",
    },
)
def meta_subscription():
    """Meta webhook verification: its subscription handshake."""
    try:
        challenge = meta_inbound.verify_subscription(
            context.services().settings.inbound.meta_verify_token,
            request.args.get("hub.mode"),
            request.args.get("hub.verify_token"),
            request.args.get("hub.challenge"),
        )
    except WebhookRejected as rejected:
        raise _refused(rejected) from None
    return Response(challenge, 200, mimetype="text/plain")


@blueprint.post("/v1/webhooks/meta")
@documented(
    body={"type": "object", "description": "{object: whatsapp_business_account, entry}"},
    answers={
        200: "Verified and applied",
        400: "Not a WhatsApp notification",
        401: "No signature",
        403: "Wrong signature, or META_APP_SECRET not set",
    },
)
def meta():
    """Meta WhatsApp Cloud API webhook: its notifications (statuses and messages).

    Verified with `X-Hub-Signature-256` (HMAC-SHA256 of the raw body, keyed by META_APP_SECRET).
    """
    try:
        meta_inbound.verify(
            context.services().settings.inbound.meta_app_secret,
            request.get_data(cache=True),
            request.headers.get("X-Hub-Signature-256"),
        )
    except WebhookRejected as rejected:
        raise _refused(rejected) from None
    return jsonify(_apply(_parsed(meta_inbound.parse, _json_body())))


def _delivery_view(record: dict) -> dict:
    event = record["event"]
    return {
        "delivery_id": event["event_id"],
        "type": event.get("type"),
        "url": record["url"],
        "attempts": record["attempts"],
        "last_error": record.get("last_error"),
        "first_attempt_at": record.get("first_attempt_at"),
        "died_at": record.get("died_at"),
        "event": event,
    }


@blueprint.get("/v1/webhooks/deliveries")
@documented(
    query=(query("state", required=True, enum=["dead"]), *paging(default=100, maximum=PAGE_MAX)),
    answers={200: "A page: {deliveries: [...], next_cursor}", 400: "A bad state, limit or cursor"},
)
@require_any_key
def deliveries():
    """List dead callback deliveries: the status callbacks that gave up.

    A callback is retried with exponential backoff for CALLBACK_RETRY_FOR (a day) and then dies;
    dead ones are listed here, newest first, until POST .../retry re-sends them. An account's key
    sees its own; an operator key (ADMIN_API_KEY) sees every account's.
    """
    if request.args.get("state") != "dead":
        raise ApiError(400, "state must be dead", "invalid_field", field="state")
    limit = int_arg("limit", 100, 1, PAGE_MAX)
    offset = int_arg("cursor", 0, 0, None)
    records, next_offset = context.services().outbox.dead_page(offset, limit, scope())
    return jsonify(
        {
            "deliveries": [_delivery_view(record) for record in records],
            "next_cursor": str(next_offset) if next_offset is not None else None,
        }
    )


@blueprint.post("/v1/webhooks/deliveries/<delivery_id>/retry")
@documented(answers={202: "Queued again: {delivery_id, state: pending}", 404: "No dead delivery with that id"})
@require_any_key
def retry_delivery(delivery_id: str):
    """Re-send a dead callback delivery.

    It goes to the end of its chain, with a fresh retry budget. An account may re-send its own;
    an operator key, any.
    """
    if context.services().outbox.revive(delivery_id, scope()) is None:
        raise ApiError(404, "No dead delivery with that id", "not_found", field="delivery_id")
    return jsonify({"delivery_id": delivery_id, "state": "pending"}), 202
