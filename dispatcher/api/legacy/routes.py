"""The legacy API's message and queue routes (`/api/v1/...`), kept for clients of the Fastify + BullMQ
system this service replaces.

They map onto the same services as `/v1`: a "job" is a message (or, for a bulk, a batch). Bodies,
answers and the error shape `{"success": false, "message": ...}` are the ones its source used;
unknown body fields are refused as it refused them. Unlike the original, the API key is required.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime

from flask import Blueprint, jsonify
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from dispatcher import statuses
from dispatcher.api import context
from dispatcher.api.auth import account, quota_checked_at_accept, require_api_key, require_operator
from dispatcher.api.context import find_own_batch, find_own_message
from dispatcher.api.errors import CONTACT_REFUSED, ApiError
from dispatcher.api.intake import prepare_row
from dispatcher.api.legacy import errors as legacy_errors
from dispatcher.api.openapi import documented
from dispatcher.api.presenters import queue_counts
from dispatcher.api.request_input import json_object
from dispatcher.api.schemas import TEMPLATE_MAX
from dispatcher.contacts import ContactRefused
from dispatcher.message_rules import InvalidInput, checked_body, checked_expires_at, checked_recipient
from dispatcher.messages import Route, RowAccepted
from dispatcher.names import SENDER_MAX
from dispatcher.settings import Settings
from dispatcher.templates import Template
from dispatcher.times import iso
from providers.base import TEXT, mask_phone

blueprint = Blueprint("legacy", __name__, url_prefix="/api/v1")
legacy_errors.answer_in_legacy_shape(blueprint)

SINGLE_TYPES = ("text", "media", "buttons", "list", "audio")
BULK_TYPES = ("text", "media", "audio")
# BullMQ's words for our statuses.
JOB_STATES = {
    statuses.QUEUED: "waiting",
    statuses.SENDING: "active",
    statuses.RETRYING: "delayed",
    statuses.SENT: "completed",
    statuses.DELIVERED: "completed",
    statuses.READ: "completed",
    statuses.FAILED: "failed",
    statuses.CANCELED: "failed",
    statuses.EXPIRED: "failed",
}
BATCH_JOB_STATES = {
    "accepting": "waiting",
    "running": "active",
    "paused": "paused",
    "completed": "completed",
    "canceled": "failed",
}
# The legacy API's refusal of a request, as the docs show it.
REFUSED = '`{"success": false, "message": "..."}`'


class LegacySingleSendSchema(Schema):
    """The legacy API's POST /api/v1/dispatch/single body."""

    class Meta:
        unknown = RAISE

    instanceName = fields.String(required=True, validate=validate.Length(min=1, max=SENDER_MAX))
    phone = fields.String(required=True)
    type = fields.String(required=True, validate=validate.OneOf(SINGLE_TYPES))
    message = fields.String(
        validate=validate.Length(max=TEMPLATE_MAX, error=f"message must be at most {TEMPLATE_MAX} characters")
    )
    mediaUrl = fields.String()
    audioUrl = fields.String()
    caption = fields.String(
        validate=validate.Length(max=TEMPLATE_MAX, error=f"caption must be at most {TEMPLATE_MAX} characters")
    )
    buttons = fields.List(fields.Dict())
    sections = fields.List(fields.Dict())
    buttonText = fields.String()
    footerText = fields.String()


class LegacyRecipientSchema(Schema):
    class Meta:
        unknown = RAISE

    phone = fields.String(required=True)
    variables = fields.Dict(keys=fields.String())


class LegacyBulkSendSchema(Schema):
    """The legacy API's POST /api/v1/dispatch/bulk body."""

    class Meta:
        unknown = RAISE

    instanceName = fields.String(required=True, validate=validate.Length(min=1, max=SENDER_MAX))
    recipients = fields.List(fields.Nested(LegacyRecipientSchema), required=True, validate=validate.Length(min=1))
    message = fields.String(
        validate=validate.Length(max=TEMPLATE_MAX, error=f"message must be at most {TEMPLATE_MAX} characters")
    )
    type = fields.String(required=True, validate=validate.OneOf(BULK_TYPES))
    mediaUrl = fields.String()
    audioUrl = fields.String()
    caption = fields.String(
        validate=validate.Length(max=TEMPLATE_MAX, error=f"caption must be at most {TEMPLATE_MAX} characters")
    )
    delayInMs = fields.Integer(validate=validate.Range(min=0))


def _load(schema: Schema, data: dict) -> dict:
    try:
        return schema.load(data)
    except ValidationError as error:
        field, problem = _first(error.normalized_messages())
        raise ApiError(400, f"body/{field} {problem}", "invalid_field", field=field) from None


def _first(messages: dict, prefix: str = "") -> tuple[str, str]:
    name, problem = next(iter(messages.items()))
    path = f"{prefix}{name}"
    if isinstance(problem, dict):
        return _first(problem, f"{path}/")
    return path, problem[0]


def _require_supported(data: dict) -> None:
    kind = data["type"]
    if kind == "media" and not data.get("mediaUrl"):
        raise ApiError(400, "mediaUrl is required when type is media", "missing_fields", field="mediaUrl")
    if kind == "audio" and not data.get("audioUrl"):
        raise ApiError(400, "audioUrl is required when type is audio", "missing_fields", field="audioUrl")
    if kind != "text":
        provider = context.services().settings.whatsapp_provider
        raise ApiError(
            400,
            f"type {kind} is not supported by the {provider} provider yet; use text",
            "unsupported_type",
            field="type",
        )


def _route(services, instance_name: str) -> Route:
    """The legacy API named the Evolution instance in every request: it is the message's sender."""
    provider, sender = services.catalog.resolve(None, instance_name, TEXT, sender_field="instanceName")
    return Route(provider, sender, callback_url=services.settings.callbacks.status_webhook_url)


def _default_expiry(settings: Settings) -> float | None:
    """The legacy bodies have no validity of their own: MESSAGE_VALIDITY_SECONDS applies, as to a /v1 send
    that gives none."""
    return checked_expires_at(settings.message_validity_seconds, settings.message_retention_days)


@blueprint.get("/health")
def health():
    return jsonify({"status": "ok", "timestamp": iso(time.time())})


@blueprint.post("/dispatch/single")
@documented(
    body=LegacySingleSendSchema,
    answers={
        200: '`{"success": true, "message": "Job único adicionado à fila.", "jobId": "msg-..."}`',
        400: REFUSED,
        422: CONTACT_REFUSED,
    },
)
@require_api_key
@quota_checked_at_accept
def dispatch_single():
    """Legacy API: queue one message.

    Unknown fields are refused. The answer's `jobId` is the message id. Only `text` is sent by the
    current provider.
    """
    services = context.services()
    settings = services.settings
    data = _load(LegacySingleSendSchema(), json_object())
    _require_supported(data)
    try:
        body = checked_body(data.get("message", ""), settings.message_body_max_chars)
        recipient = checked_recipient(data["phone"], settings.default_region)
        route = _route(services, data["instanceName"])
    except InvalidInput as invalid:
        raise ApiError.invalid(invalid) from None
    accepted = services.messages.accept(
        account(), recipient, body, f"fastify-{uuid.uuid4()}", route, expires_at=_default_expiry(settings)
    )
    return jsonify({"success": True, "message": "Job único adicionado à fila.", "jobId": accepted.message_id})


@blueprint.post("/dispatch/bulk")
@documented(
    body=LegacyBulkSendSchema,
    answers={
        200: '`{"success": true, "message": "N jobs adicionados à fila.", "jobIds": [...], "batchId": "..."}`',
        400: REFUSED,
        422: "A recipient has opted out (`recipients/<i>/phone` names it): nothing is queued",
        413: "More recipients than BULK_MAX_MESSAGES, or a body larger than BULK_MAX_BYTES",
    },
)
@require_api_key
def dispatch_bulk():
    """Legacy API: queue a message per recipient.

    `{{key}}` (spaces allowed) in `message` takes each recipient's variable. A recipient that
    cannot be sent refuses the whole request, naming it. `jobIds` are the message ids.
    """
    services = context.services()
    settings = services.settings
    raw = json_object()
    if isinstance(raw.get("recipients"), list) and len(raw["recipients"]) > settings.bulk_max_messages:
        raise ApiError(
            413, f"Too many recipients: at most {settings.bulk_max_messages}", "too_many_rows", field="recipients"
        )
    data = _load(LegacyBulkSendSchema(), raw)
    _require_supported(data)
    try:
        route = _route(services, data["instanceName"])
    except InvalidInput as invalid:
        raise ApiError.invalid(invalid) from None
    rows = []
    template = Template(data.get("message", ""))  # parsed once for every recipient
    for index, recipient in enumerate(data["recipients"]):
        row = {
            "recipient_phone": recipient["phone"],
            "external_id": f"fastify-{uuid.uuid4()}",
            "variables": recipient.get("variables") or {},
        }
        try:
            rows.append(prepare_row(row, template, settings, route, account()))
        except InvalidInput as invalid:
            raise ApiError(
                400,
                f"recipients[{index}]: {invalid}",
                invalid.body["code"],
                field=f"recipients/{index}/{invalid.body['field']}",
            ) from None
    _refuse_opted_out(services, [row.recipient for row in rows])
    batch_id, outcomes = services.messages.accept_batch(account(), rows, route, expires_at=_default_expiry(settings))
    job_ids = [outcome.message_id for outcome in outcomes if isinstance(outcome, RowAccepted)]
    return jsonify(
        {"success": True, "message": f"{len(job_ids)} jobs adicionados à fila.", "jobIds": job_ids, "batchId": batch_id}
    )


def _refuse_opted_out(services, recipients: list[str]) -> None:
    """The legacy bulk refuses a request whose recipient cannot be sent, naming it: an opted-out number too, before
    anything is written. (A number that opts out meanwhile, or over its daily cap, is refused by the create script
    itself and left out of `jobIds`.)"""
    for index, opted_out in enumerate(services.contacts.opted_out(account(), recipients)):
        if opted_out:
            refused = ContactRefused("opted_out")
            raise ApiError(422, f"recipients[{index}]: {refused}", refused.code, field=f"recipients/{index}/phone")


@blueprint.get("/queue/status")
@documented(
    answers={200: '`{"name", "counts": {"wait", "active", "completed", "failed", "delayed", "paused"}, "isPaused"}`'}
)
@require_operator
def queue_status():
    """Legacy API: queue counts, in BullMQ's words."""
    counts = queue_counts(context.services().store)
    return jsonify(
        {
            "name": context.services().settings.queue_name,
            "counts": {
                "wait": counts[statuses.QUEUED],
                "active": counts[statuses.SENDING],
                "completed": counts[statuses.SENT] + counts[statuses.DELIVERED] + counts[statuses.READ],
                "failed": counts[statuses.FAILED] + counts[statuses.CANCELED] + counts[statuses.EXPIRED],
                "delayed": counts[statuses.RETRYING],
                "paused": 0,
            },
            "isPaused": False,
        }
    )


def _millis(stamp: str | None) -> int | None:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000) if stamp else None


def _message_job(message) -> dict:
    finished = message.status in JOB_STATES and JOB_STATES[message.status] in ("completed", "failed")
    started = next((entry["at"] for entry in message.history if entry["status"] == statuses.SENDING), None)
    return {
        "id": message.message_id,
        "name": "dispatch.send_message",
        "data": {
            "phone": mask_phone(message.recipient),
            "externalId": message.external_id,
            "batchId": message.batch_id,
        },
        "state": JOB_STATES.get(message.status, "unknown"),
        "progress": 100 if finished else 0,
        "failedReason": (message.last_error or {}).get("message")
        if message.status == statuses.FAILED
        else (message.status if message.status in (statuses.CANCELED, statuses.EXPIRED) else None),
        "returnValue": {"provider_message_id": message.provider_message_id} if message.provider_message_id else None,
        "timestamp": _millis(message.created_at),
        "processedOn": _millis(started),
        "finishedOn": _millis(message.updated_at) if finished else None,
        "attemptsMade": message.attempts,
    }


def _batch_job(batch_id: str, batch: dict) -> dict:
    total, finished = int(batch.get("total", 0)), int(batch.get("finished", 0))
    return {
        "id": batch_id,
        "name": "dispatch.batch",
        "data": {"total": total},
        "state": BATCH_JOB_STATES.get(batch["state"], "unknown"),
        "progress": round(100 * finished / total) if total else 100,
        "failedReason": "canceled" if batch["state"] == "canceled" else None,
        "returnValue": None,
        "timestamp": _millis(batch.get("created_at")),
        "processedOn": _millis(batch.get("created_at")),
        "finishedOn": _millis(batch.get("finished_at")),
        "attemptsMade": 1,
    }


@blueprint.get("/queue/jobs/<job_id>/status")
@documented(
    answers={
        200: '`{"id", "name", "data", "state", "progress", "failedReason", "returnValue", "timestamp", '
        '"processedOn", "finishedOn", "attemptsMade"}`',
        404: '`{"success": false, "message": "Job não encontrado."}`',
    }
)
@require_api_key
def job_status(job_id: str):
    """Legacy API: a job's state (a message, or a batch)."""
    if job_id.startswith("batch-"):
        batch = find_own_batch(job_id)
        if batch is not None:
            return jsonify(_batch_job(job_id, batch))
    else:
        message = find_own_message(job_id)
        if message is not None:
            return jsonify(_message_job(message))
    raise ApiError(404, "Job não encontrado.", "job_not_found", field="jobId")
