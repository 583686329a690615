"""Operators' hands on single messages and batches: retry what failed, cancel what has not gone yet.

A retry keeps the message id and its history, gives it a fresh attempt budget and publishes its task
in the same Redis script; it never resends a message the provider already accepted.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from dispatcher.api import context
from dispatcher.api.auth import require_api_key
from dispatcher.api.context import own_batch, own_message
from dispatcher.api.errors import ApiError
from dispatcher.api.openapi import Answer, documented
from dispatcher.api.presenters import message_view
from dispatcher.api.schemas import MessageSchema

blueprint = Blueprint("retries", __name__)

REFUSALS = {
    "already_sent": "The provider already accepted this message; retrying it would send it twice",
    "sending": "The message is being sent right now",
}


def retry_one(message_id: str) -> str:
    services = context.services()
    grace = services.settings.queued_republish_after_seconds
    return services.failed.retry(message_id, services.messages.task_for, grace)


@blueprint.post("/v1/messages/<message_id>/retry")
@documented(
    answers={
        200: Answer("Queued again", MessageSchema),
        404: "No such message for this API key",
        409: "Not failed, or the provider already accepted it (`already_sent`)",
    }
)
@require_api_key
def retry_message(message_id: str):
    """Retry a failed message (same id, history kept, fresh attempts)."""
    own_message(message_id)
    outcome = retry_one(message_id)
    if outcome != "ok":
        text = REFUSALS.get(outcome, f"Only a failed message can be retried; this one is {outcome}")
        raise ApiError(409, text, outcome if outcome in REFUSALS else "not_failed", current_status=outcome)
    return jsonify(message_view(own_message(message_id)))


@blueprint.post("/v1/messages/<message_id>/cancel")
@documented(
    answers={
        200: Answer("Canceled", MessageSchema),
        404: "No such message for this API key",
        409: "Being sent, or already finished",
    }
)
@require_api_key
def cancel_message(message_id: str):
    """Cancel a message that is queued, retrying or scheduled."""
    own_message(message_id)
    outcome = context.services().store.cancel(message_id)
    if outcome != "ok":
        text = REFUSALS.get(outcome, f"Only a message not sent yet can be canceled; this one is {outcome}")
        raise ApiError(409, text, "not_cancelable", current_status=outcome)
    return jsonify(message_view(own_message(message_id)))


@blueprint.post("/v1/batches/<batch_id>/retry-failed")
@documented(
    answers={
        200: "How many were queued again, and how many were left because the provider had accepted them",
        404: "No such batch for this API key",
    }
)
@require_api_key
def retry_failed_in_batch(batch_id: str):
    """Retry every failed row of a batch (those the provider never accepted)."""
    services = context.services()
    batch = own_batch(batch_id)
    failed = services.failed.failed_in_batch(batch_id, int(batch["total"]))
    grace = services.settings.queued_republish_after_seconds
    outcomes = services.failed.retry_many(failed, services.messages.task_for, grace)
    return jsonify(
        {
            "batch_id": batch_id,
            "retried": outcomes.count("ok"),
            "already_sent": outcomes.count("already_sent"),
        }
    )
