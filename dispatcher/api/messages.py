"""`/v1/messages`: the seed contract's send, and reading a message back."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, g, jsonify, request

from dispatcher.api.auth import require_api_key
from dispatcher.api.errors import ApiError
from dispatcher.api.schemas import SendMessageSchema
from dispatcher.api.validation import json_object, load
from dispatcher.checks import InvalidInput, checked_body, checked_callback_url, checked_recipient
from dispatcher.messages import IdempotencyConflict, Route
from dispatcher.provider_setup import ProviderCatalog
from dispatcher.store import Message
from providers.base import MEDIA, TEMPLATE, TEXT, mask_phone

log = logging.getLogger(__name__)
blueprint = Blueprint("messages", __name__)
_send_schema = SendMessageSchema()


def _services():
    return current_app.extensions["dispatcher"]


def route_for(data: dict, services, template: dict | None = None) -> Route:
    """The provider, sender, media, provider `template` and callback URL a request asks for, checked against
    what the chosen provider can do: an impossible request is refused here, not in a worker."""
    catalog: ProviderCatalog = services.catalog
    media = data.get("media")
    kind = TEMPLATE if template else MEDIA if media else TEXT
    provider, sender = catalog.resolve(data.get("provider"), data.get("sender"), kind)
    if media:
        media = {
            "url": media["url"],
            "kind": media["type"],
            **{name: media[name] for name in ("caption", "mimetype", "filename") if media.get(name)},
        }
    callback_url = checked_callback_url(data.get("callback_url"), services.settings.callbacks)
    return Route(provider, sender, media or None, template or None, callback_url)


def message_view(message: Message) -> dict:
    """A message as the API shows it: recipient masked, text left out."""
    return {
        "message_id": message.message_id,
        "external_id": message.external_id,
        "status": message.status,
        "recipient": mask_phone(message.recipient),
        "provider": message.provider,
        "provider_message_id": message.provider_message_id,
        "attempts": message.attempts,
        "last_error": message.last_error,
        "history": message.history,
        "created_at": message.created_at,
        "updated_at": message.updated_at,
    }


@blueprint.post("/v1/messages/send")
@require_api_key
def send_message():
    """Queue one WhatsApp message.
    ---
    summary: Queue one message (the reach-town contract)
    description: >
      Validates, records and queues the message, then answers at once; a worker sends it.
      `external_id` is unique per API key: a replay answers 200 with the first message and its
      current status; the same `external_id` with another recipient or text answers 409.
    security: [{ApiKey: []}]
    requestBody:
      required: true
      content:
        application/json:
          schema: SendMessageSchema
    responses:
      200:
        description: Queued (or a replay of an accepted message)
        content: {application/json: {schema: SendAnswerSchema}}
      400:
        description: "Invalid body: `Missing required fields: ...`, `Invalid phone number format`, ..."
        content: {application/json: {schema: ErrorSchema}}
      401:
        description: "`Missing X-API-Key header` or `Invalid API Key`"
        content: {application/json: {schema: ErrorSchema}}
      409:
        description: external_id already used for another recipient or text
        content: {application/json: {schema: ErrorSchema}}
      503:
        description: Redis unreachable; nothing was queued
        content: {application/json: {schema: ErrorSchema}}
    """
    services = _services()
    settings = services.settings
    raw = json_object()
    if (raw.get("media") is not None or raw.get("template") is not None) and raw.get("message_body") is None:
        raw = {**raw, "message_body": ""}  # a file or a provider template needs no text
    data = load(_send_schema, raw)
    try:
        route = route_for(data, services, data.get("template"))
        body = checked_body(
            data["message_body"], settings.message_body_max_chars, optional=bool(route.media or route.template)
        )
        recipient = checked_recipient(data["recipient_phone"], settings.default_region)
    except InvalidInput as invalid:
        raise ApiError(400, **invalid.body) from None
    try:
        send_at = data["send_at"].timestamp() if data.get("send_at") else None
        accepted = services.messages.accept(g.key_id, recipient, body, data["external_id"], route, send_at)
    except IdempotencyConflict as conflict:
        raise ApiError(
            409,
            "external_id was already used for a message with another recipient_phone or message_body",
            "idempotency_conflict",
            field="external_id",
            message_id=conflict.args[0],
        ) from None
    log.info(
        "message %s for %s",
        "replayed" if accepted.replayed else "queued",
        mask_phone(recipient),
        extra={"message_id": accepted.message_id, "status": accepted.status},
    )
    return jsonify(
        {
            "status": accepted.status,
            "message_id": accepted.message_id,
            "provider_details": {"provider": route.provider, "queued_at": accepted.queued_at},
            "replayed": accepted.replayed,
        }
    )


@blueprint.get("/v1/messages/<message_id>")
@require_api_key
def get_message(message_id: str):
    """Read one message.
    ---
    summary: A message's status, attempts, last error and history
    security: [{ApiKey: []}]
    parameters:
      - {name: message_id, in: path, required: true, schema: {type: string}}
    responses:
      200:
        description: The message
        content: {application/json: {schema: MessageSchema}}
      404:
        description: No such message for this API key
        content: {application/json: {schema: ErrorSchema}}
    """
    message = _services().store.get(message_id)
    if message is None or message.key_id != g.key_id:
        raise ApiError(404, "Message not found", "message_not_found", field="message_id")
    return jsonify(message_view(message))


@blueprint.get("/v1/messages")
@require_api_key
def find_message():
    """Find a message by your external_id.
    ---
    summary: Find a message by external_id
    security: [{ApiKey: []}]
    parameters:
      - {name: external_id, in: query, required: true, schema: {type: string}}
    responses:
      200:
        description: The message
        content: {application/json: {schema: MessageSchema}}
      400:
        description: external_id missing
        content: {application/json: {schema: ErrorSchema}}
      404:
        description: No message with that external_id for this API key
        content: {application/json: {schema: ErrorSchema}}
    """
    external_id = request.args.get("external_id", "")
    if not external_id:
        raise ApiError(400, "Missing required query parameter: external_id", "missing_fields", field="external_id")
    message = _services().store.find_by_external_id(g.key_id, external_id)
    if message is None:
        raise ApiError(404, "Message not found", "message_not_found", field="external_id")
    return jsonify(message_view(message))
