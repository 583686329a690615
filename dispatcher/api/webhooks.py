"""`/v1/webhooks`: the providers' status reports and replies coming in, and our callbacks' dead letters.

Each provider endpoint (one per webhook adapter declared in dispatcher/provider_registry.py) does the same
four steps: verify the request is the provider's (its shared secret or signature; a forged or unsigned request
changes nothing: 401/403), parse it into status reports and replies (a body we cannot read: 400), then apply
each report (duplicates dropped, statuses only forward) and pass each reply on. A report for a message we do
not know is answered 200 with a warning in the log, so the provider stops retrying it.
"""

from __future__ import annotations

import functools
import json
import logging
from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, request

from dispatcher.api import context
from dispatcher.api.auth import require_any_key, scope
from dispatcher.api.errors import ApiError
from dispatcher.api.openapi import Answer, documented, paging, query
from dispatcher.api.request_input import int_arg, refuse_unsafe_json
from dispatcher.contacts import OPT_OUT, ContactRefused
from dispatcher.messages import Route
from dispatcher.provider_registry import PROVIDERS
from dispatcher.quotas import QuotaExceeded
from providers.base import mask_phone
from providers.inbound import (
    JSON,
    InboundAdapter,
    InboundEvent,
    IncomingMessage,
    PreferenceChange,
    SenderState,
    WebhookMalformed,
    WebhookRejected,
    WebhookRequest,
)

log = logging.getLogger(__name__)
blueprint = Blueprint("webhooks", __name__)
PAGE_MAX = 500


def _refused(error: WebhookRejected) -> ApiError:
    code = "unauthorized" if error.status == 401 else "forbidden"
    return ApiError(error.status, error.message, code)


def _apply(events: list[InboundEvent]) -> dict:
    """Apply the reports, pass the replies on (an opt-out by reply confirmed when OPT_OUT_REPLY is set), apply
    the contacts' preferences, follow the senders' connections; the answer counts what became of them."""
    services = context.services()
    outcomes: dict[str, int] = {}
    for event in events:
        if isinstance(event, IncomingMessage):
            outcome, opted_out = services.reports.receive(event)
            if opted_out and services.contacts.keyword_action(event.text) == OPT_OUT:
                _confirm_opt_out(event, opted_out[0])
        elif isinstance(event, PreferenceChange):
            outcome = services.contacts.preference_changed(event)
        elif isinstance(event, SenderState):
            outcome = services.senders.connection_changed(
                event.provider, event.sender, event.connected, event.state, event.reason
            )
        else:
            outcome = services.reports.apply(event)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return {"received": len(events), "outcomes": outcomes}


def _confirm_opt_out(reply: IncomingMessage, account: str) -> None:
    """OPT_OUT_REPLY, when set, to a contact who just opted out by reply: once (a provider's retry of the reply is a
    duplicate and changes nothing), through the sender it wrote to, as the account's message."""
    services = context.services()
    text = services.settings.contacts.opt_out_reply
    if not text or reply.provider not in services.catalog.providers:  # a reply through a provider we do not send with
        return
    route = Route(reply.provider, reply.to, callback_url=services.settings.callbacks.status_webhook_url)
    external_id = f"opt-out-reply:{reply.provider}:{reply.provider_message_id}"[:255]
    try:
        services.messages.accept(account, reply.from_phone, text, external_id, route, confirms_opt_out=True)
    except (ContactRefused, QuotaExceeded) as refused:
        log.warning("opt-out confirmation to %s not sent: %s", mask_phone(reply.from_phone), refused)


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


def _public_url() -> str:
    """The URL the provider called (and signed): PUBLIC_BASE_URL's with the path and query we got, since behind a
    proxy the URL we see is not that one."""
    base = context.services().settings.public_base_url
    if not base:
        return request.url
    query = urlsplit(request.url).query
    return f"{base}{request.path}?{query}" if query else f"{base}{request.path}"


def _webhook_request() -> WebhookRequest:
    return WebhookRequest(
        url=_public_url(),
        headers=request.headers,
        args=request.args,
        form=list(request.form.items(multi=True)),
        body=request.get_data(cache=True),
    )


def _verified(name: str) -> InboundAdapter:
    adapter = context.services().settings.inbound[name]
    try:
        adapter.verify(_webhook_request())
    except WebhookRejected as rejected:
        raise _refused(rejected) from None
    return adapter


def _receive(name: str):
    """POST /v1/webhooks/<name>: verify, parse, apply; the provider's own answer, else the outcomes' counts."""
    adapter = _verified(name)
    payload = _json_body() if adapter.body == JSON else request.form.to_dict()
    outcomes = _apply(_parsed(adapter.parse, payload))
    if adapter.reply is None:
        return jsonify(outcomes)
    body, content_type = adapter.reply
    return Response(body, 200, mimetype=content_type)


def _handshake(name: str):
    """GET /v1/webhooks/<name>: the provider's subscription handshake."""
    adapter = context.services().settings.inbound[name]
    try:
        answer = adapter.subscribe(_webhook_request())
    except WebhookRejected as rejected:
        raise _refused(rejected) from None
    return Response(answer, 200, mimetype="text/plain")


def _receive_documented(name: str, adapter: type[InboundAdapter]):
    """The POST view for provider `name`, described in /openapi.json by its adapter."""
    view = functools.partial(_receive, name)
    view.__doc__ = adapter.__doc__
    answers: dict[int, str | Answer] = dict(adapter.ANSWERS)
    if adapter.reply is not None:
        answers[200] = Answer(adapter.ANSWERS[200], {"type": "string"}, adapter.reply[1])
    if adapter.body == JSON:
        return documented(answers, body={"type": "object", "description": adapter.BODY_DOC})(view)
    form = {"type": "object", "additionalProperties": {"type": "string"}}
    return documented(answers, body=form, body_media_type="application/x-www-form-urlencoded")(view)


def _handshake_documented(name: str, adapter: type[InboundAdapter]):
    """The GET handshake view for provider `name`, described in /openapi.json by its adapter."""
    view = functools.partial(_handshake, name)
    view.__doc__ = adapter.subscribe.__doc__
    answers: dict[int, str | Answer] = dict(adapter.HANDSHAKE_ANSWERS)
    answers[200] = Answer(adapter.HANDSHAKE_ANSWERS[200], {"type": "string"}, "text/plain")
    return documented(answers, query=tuple(query(name) for name in adapter.HANDSHAKE_QUERY))(view)


for _name, _declaration in PROVIDERS.items():
    if (_adapter := _declaration.inbound) is not None:
        _path = f"/v1/webhooks/{_name}"
        blueprint.add_url_rule(_path, _name, _receive_documented(_name, _adapter), methods=["POST"])
        if _adapter.handshake:
            _view = _handshake_documented(_name, _adapter)
            blueprint.add_url_rule(_path, f"{_name}_subscription", _view, methods=["GET"])


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
