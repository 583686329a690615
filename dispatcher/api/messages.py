"""`/v1/messages`: the reach-town contract's send, and reading a message back."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Blueprint, jsonify, request

from dispatcher import statuses
from dispatcher.api import context
from dispatcher.api.auth import account, quota_checked_at_accept, require_api_key
from dispatcher.api.context import own_message
from dispatcher.api.errors import CONTACT_REFUSED, ApiError
from dispatcher.api.intake import route_for, timing
from dispatcher.api.openapi import Answer, documented, paging, query
from dispatcher.api.presenters import message_view
from dispatcher.api.request_input import int_arg, json_object, load
from dispatcher.api.schemas import BatchMessagesSchema, MessageSchema, SendAnswerSchema, SendMessageSchema
from dispatcher.failed_messages import Cursor, FailedFilter
from dispatcher.message_rules import InvalidInput, checked_body, checked_recipient
from dispatcher.messages import IdempotencyConflict
from providers.base import mask_phone

log = logging.getLogger(__name__)
blueprint = Blueprint("messages", __name__)
PAGE_MAX = 500
_send_schema = SendMessageSchema()


@blueprint.post("/v1/messages/send")
@documented(
    body=SendMessageSchema,
    answers={
        200: Answer("Queued (or a replay of an accepted message)", SendAnswerSchema),
        400: "Invalid body: `Missing required fields: ...`, `Invalid phone number format`, ...",
        409: "external_id already used for another recipient or text",
        422: CONTACT_REFUSED,
        503: "Redis unreachable; retry the same request (a replay never sends twice)",
    },
)
@require_api_key
@quota_checked_at_accept
def send_message():
    """Queue one message (the reach-town contract).

    Validates, records and queues the message, then answers at once; a worker sends it.
    `external_id` is unique per API key: a replay answers 200 with the first message and its
    current status; the same `external_id` with another recipient or text answers 409.
    """
    services = context.services()
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
        send_at, expires_at = timing(data, settings)
    except InvalidInput as invalid:
        raise ApiError.invalid(invalid) from None
    try:
        accepted = services.messages.accept(account(), recipient, body, data["external_id"], route, send_at, expires_at)
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
@documented(answers={200: Answer("The message", MessageSchema), 404: "No such message for this API key"})
@require_api_key
def get_message(message_id: str):
    """A message's status, attempts, last error and history."""
    return jsonify(message_view(own_message(message_id)))


@blueprint.get("/v1/messages")
@documented(
    query=(
        query("external_id"),
        query("status", enum=[statuses.FAILED]),
        query("batch_id"),
        query("provider"),
        query("sender"),
        query("error_code"),
        query("since", "failed at or after", format="date-time"),
        query("until", "failed at or before", format="date-time"),
        *paging(default=100, maximum=PAGE_MAX),
    ),
    answers={
        200: Answer(
            "The message (by external_id), or a page of failed messages: {messages, next_cursor}",
            {"oneOf": [MessageSchema, BatchMessagesSchema]},
        ),
        400: "external_id missing, or a bad status, time, limit or cursor",
        404: "No message with that external_id for this API key",
    },
)
@require_api_key
def find_message():
    """Find a message by external_id, or list failed messages (status=failed).

    With `external_id`: that message. With `status=failed`: a page of failed messages, oldest
    failure first, filtered by batch, provider, sender, error code and time; a selective filter
    may give a page shorter than `limit` (examining at most 5,000 failures per request): follow
    `next_cursor` until it is null.
    """
    if "status" in request.args:
        return jsonify(_failed_page())
    external_id = request.args.get("external_id", "")
    if not external_id:
        raise ApiError(400, "Missing required query parameter: external_id", "missing_fields", field="external_id")
    message = context.services().store.find_by_external_id(account(), external_id)
    if message is None:
        raise ApiError(404, "Message not found", "message_not_found", field="external_id")
    return jsonify(message_view(message))


def _time_arg(name: str) -> float | None:
    value = request.args.get(name)
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"{name} must be an ISO-8601 date and time", "invalid_field", field=name) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _failed_page() -> dict:
    """GET /v1/messages?status=failed: a page of this API key's failed messages."""
    if request.args.get("status") != statuses.FAILED:
        raise ApiError(
            400,
            "status must be failed (a batch's messages by any status: GET /v1/batches/<batch_id>/messages)",
            "invalid_field",
            field="status",
        )
    wanted = FailedFilter(
        batch_id=request.args.get("batch_id") or None,
        provider=request.args.get("provider") or None,
        sender=request.args.get("sender") or None,
        error_code=request.args.get("error_code") or None,
        since=_time_arg("since"),
        until=_time_arg("until"),
    )
    limit = int_arg("limit", 100, 1, PAGE_MAX)
    try:
        cursor = Cursor.parse(request.args["cursor"]) if request.args.get("cursor") else None
    except ValueError:
        message = "cursor must be the next_cursor of a previous page"
        raise ApiError(400, message, "invalid_field", field="cursor") from None
    services = context.services()
    ids, next_cursor = services.failed.page(account(), wanted, limit, cursor)
    messages = [message_view(m) for m in services.store.get_many(ids) if m is not None]
    return {"messages": messages, "next_cursor": str(next_cursor) if next_cursor else None}
