"""`/v1/messages/bulk` and `/v1/batches`: campaigns sent as one batch, watched and controlled."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from flask import Blueprint, jsonify, request

from dispatcher import statuses
from dispatcher.api import context
from dispatcher.api.auth import account, require_api_key
from dispatcher.api.context import own_batch
from dispatcher.api.errors import ApiError
from dispatcher.api.intake import prepare_row, route_for, timing
from dispatcher.api.openapi import Answer, documented, paging, query
from dispatcher.api.presenters import message_view
from dispatcher.api.request_input import int_arg, json_object, load
from dispatcher.api.schemas import BatchMessagesSchema, BatchSchema, BulkAnswerSchema, BulkRequestSchema
from dispatcher.contacts import ContactRefused
from dispatcher.message_rules import InvalidInput
from dispatcher.messages import IdempotencyConflict
from dispatcher.store import NewMessage
from dispatcher.templates import Template

log = logging.getLogger(__name__)
blueprint = Blueprint("batches", __name__)
_envelope_schema = BulkRequestSchema(exclude=("messages",))
PAGE_MAX = 500


# Documented by its schema, not loaded through it in one go (as a schema-loading framework would): the envelope
# is, then each row on its own, so a bad row is reported, not fatal, and a plain row skips marshmallow
# (intake.load_row), which keeps 10,000 rows fast.
@blueprint.post("/v1/messages/bulk")
@documented(
    body=BulkRequestSchema,
    answers={
        200: Answer("Rows accepted and refused, with a result per row", BulkAnswerSchema),
        400: "The request as a whole is malformed",
        413: "More rows than BULK_MAX_MESSAGES",
    },
)
@require_api_key
def send_bulk():
    """Queue a batch (bulk send with an optional template).

    Every row is validated on its own: valid rows are accepted, invalid ones reported, in one
    answer. Each row is idempotent by `external_id`, as a single send. A row's `message_body`
    wins over `template`; `{{name}}` takes the row's variable, `{{name|fallback}}` a fallback.
    The answer comes once every accepted row is durable.
    """
    services = context.services()
    settings = services.settings
    data = json_object()
    rows = data.get("messages")
    if rows is None:
        raise ApiError(400, "Missing required fields: messages", "missing_fields", field="messages")
    if not isinstance(rows, list):
        raise ApiError(400, "messages must be a list of rows", "invalid_field", field="messages")
    if not rows:
        raise ApiError(400, "messages must hold at least one row", "invalid_field", field="messages")
    if len(rows) > settings.bulk_max_messages:
        raise ApiError(
            413,
            f"Too many rows: {len(rows)}; at most {settings.bulk_max_messages} per request "
            "(BULK_MAX_MESSAGES). Split the campaign into several requests.",
            "too_many_rows",
            field="messages",
            limit=settings.bulk_max_messages,
        )
    envelope = load(_envelope_schema, data)
    template = Template(envelope["template"]) if envelope.get("template") is not None else None
    try:
        route = route_for(envelope, services)
        send_at, expires_at = timing(envelope, settings)
    except InvalidInput as invalid:
        raise ApiError.invalid(invalid) from None

    results: list[dict] = []
    valid: list[dict] = []  # the results of the rows that passed, in order
    seen: set[str] = set()
    caller = account()

    def validated() -> Iterator[NewMessage]:
        """The rows that pass, validated as the store takes them (it writes each slice while the next is
        validated); the others' errors go in their results."""
        for index, raw in enumerate(rows):
            result = {"index": index, "external_id": raw.get("external_id") if isinstance(raw, dict) else None}
            results.append(result)
            try:
                message = prepare_row(raw, template, settings, route, caller)
                if message.external_id in seen:
                    raise InvalidInput("Duplicate external_id in this request", "duplicate_external_id", "external_id")
            except InvalidInput as invalid:
                result.update(invalid.body)
                continue
            seen.add(message.external_id)
            valid.append(result)
            yield message

    batch_id, outcomes = services.messages.accept_batch(caller, validated(), route, send_at, expires_at, most=len(rows))
    for result, outcome in zip(valid, outcomes, strict=True):
        if isinstance(outcome, ContactRefused):
            result.update(outcome.body)
        elif isinstance(outcome, IdempotencyConflict):
            result.update(
                error="external_id was already used for a message with another recipient_phone or message_body",
                code="idempotency_conflict",
                field="external_id",
                message_id=outcome.args[0],
            )
        else:
            result["message_id"] = outcome.message_id
            if outcome.replayed:
                result["replayed"] = True
    rejected = sum("error" in result for result in results)
    log.info("bulk: %d rows accepted, %d refused", len(results) - rejected, rejected, extra={"batch_id": batch_id})
    return jsonify(
        {"batch_id": batch_id, "accepted": len(results) - rejected, "rejected": rejected, "results": results}
    )


def batch_view(batch_id: str, batch: dict) -> dict:
    store = context.services().store
    total = int(batch.get("total", 0))
    finished = int(batch.get("finished", 0))
    counts = {status: int(batch.get(f"count_{status}", 0)) for status in statuses.ALL}
    rate = store.batch_rate(batch_id)
    remaining = total - finished
    eta = round(remaining / rate, 1) if rate > 0 and batch["state"] == "running" else None
    return {
        "batch_id": batch_id,
        "state": batch["state"],
        "total": total,
        "counts": {status: count for status, count in counts.items() if count},
        "progress": round(finished / total, 4) if total else 1.0,
        "rate_per_second": rate,
        "eta_seconds": eta if remaining else 0,
        "created_at": batch["created_at"],
        "finished_at": batch.get("finished_at"),
    }


@blueprint.get("/v1/batches/<batch_id>")
@documented(answers={200: Answer("The batch", BatchSchema), 404: "No such batch for this API key"})
@require_api_key
def get_batch(batch_id: str):
    """Progress, counts by status, rate and ETA of a batch."""
    return jsonify(batch_view(batch_id, own_batch(batch_id)))


@blueprint.get("/v1/batches/<batch_id>/messages")
@documented(
    query=(query("status", "only messages in this status"), *paging(default=100, maximum=PAGE_MAX)),
    answers={
        200: Answer("A page of messages", BatchMessagesSchema),
        400: "A bad status, limit or cursor",
        404: "No such batch for this API key",
    },
)
@require_api_key
def batch_messages(batch_id: str):
    """List a batch's messages (paginated).

    In row order, optionally only those of one status.
    """
    batch = own_batch(batch_id)
    status = request.args.get("status")
    if status is not None and status not in statuses.ALL:
        raise ApiError(400, f"status must be one of {', '.join(statuses.ALL)}", "invalid_field", field="status")
    limit = int_arg("limit", 100, 1, PAGE_MAX)
    position = int_arg("cursor", 0, 0, None)
    store = context.services().store
    total = int(batch.get("total", 0))
    found: list[str] = []
    # Scan the batch's rows in slices until the page is full; a status filter may skip many rows.
    while position < total and len(found) < limit:
        ids = store.batch_message_ids(batch_id, position, position + PAGE_MAX)
        for offset, current in enumerate(store.statuses_of(ids) if status else [None] * len(ids)):
            if status is None or current == status:
                found.append(ids[offset])
                if len(found) == limit:
                    position += offset + 1
                    break
        else:
            position += len(ids)
            if not ids:
                break
    messages = [message_view(m) for m in store.get_many(found) if m is not None]
    return jsonify({"messages": messages, "next_cursor": str(position) if position < total else None})


# What pausing, resuming and canceling a batch answer.
CONTROL_ANSWERS: dict[int, str | Answer] = {
    200: Answer("The batch in its new state", BatchSchema),
    404: "No such batch for this API key",
    409: "Not allowed from the batch's state (for example, resume a canceled batch)",
}


def _refused(batch_id: str, action: str, state: str):
    raise ApiError(409, f"Cannot {action} a batch that is {state}", "illegal_transition", field="batch_id", state=state)


@blueprint.post("/v1/batches/<batch_id>/pause")
@documented(answers=CONTROL_ANSWERS)
@require_api_key
def pause_batch(batch_id: str):
    """Pause a batch: no new sends within a second."""
    own_batch(batch_id)
    outcome = context.services().messages.pause_batch(batch_id)
    if outcome != "ok":
        _refused(batch_id, "pause", outcome)
    log.info("batch paused", extra={"batch_id": batch_id})
    return jsonify(batch_view(batch_id, own_batch(batch_id)))


@blueprint.post("/v1/batches/<batch_id>/resume")
@documented(answers=CONTROL_ANSWERS)
@require_api_key
def resume_batch(batch_id: str):
    """Resume a paused batch where it stopped."""
    own_batch(batch_id)
    outcome = context.services().messages.resume_batch(batch_id)
    if outcome != "ok":
        _refused(batch_id, "resume", outcome)
    log.info("batch resumed", extra={"batch_id": batch_id})
    return jsonify(batch_view(batch_id, own_batch(batch_id)))


@blueprint.post("/v1/batches/<batch_id>/cancel")
@documented(answers=CONTROL_ANSWERS)
@require_api_key
def cancel_batch(batch_id: str):
    """Cancel a batch: every unsent row is canceled."""
    own_batch(batch_id)
    outcome, canceled = context.services().messages.cancel_batch(batch_id)
    if outcome != "ok":
        _refused(batch_id, "cancel", outcome)
    log.info("batch canceled: %d waiting messages canceled", canceled, extra={"batch_id": batch_id})
    return jsonify({**batch_view(batch_id, own_batch(batch_id)), "canceled_now": canceled})
