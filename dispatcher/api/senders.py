"""`/v1/senders`: each sender's pace (rate, burst, current wait), and changing one sender's pace."""

from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, jsonify
from marshmallow import Schema, fields, validate

from dispatcher.api import context
from dispatcher.api.auth import require_any_key, require_operator
from dispatcher.api.errors import ApiError
from dispatcher.api.openapi import documented
from dispatcher.api.request_input import json_object, load
from dispatcher.api.schemas import ProviderTemplateSchema
from dispatcher.message_rules import InvalidInput

blueprint = Blueprint("senders", __name__)


class SenderPaceSchema(Schema):
    """PUT /v1/senders/<provider>/<sender>: this sender's own pace (both fields optional)."""

    rate_per_second = fields.Float(
        validate=validate.Range(min=0, max=10_000, error="rate_per_second must be between 0 (not paced) and 10000"),
        metadata={"example": 5},
    )
    burst = fields.Integer(
        validate=validate.Range(min=1, max=10_000, error="burst must be between 1 and 10000"), metadata={"example": 1}
    )
    daily_cap = fields.Integer(
        validate=validate.Range(min=0, error="daily_cap must be 0 (none) or more"),
        metadata={"description": "Most messages per UTC day; the rest wait for the next day.", "example": 500},
    )
    warmup_start = fields.Integer(
        validate=validate.Range(min=0, error="warmup_start must be 0 (no warm-up) or more"),
        metadata={
            "description": "A new number's cap on its first day; it grows by warmup_growth a day.",
            "example": 20,
        },
    )
    warmup_growth = fields.Float(
        validate=validate.Range(min=1, max=10, error="warmup_growth must be between 1 and 10"),
        metadata={"example": 1.5},
    )
    state = fields.String(validate=validate.OneOf(("active", "paused"), error="state must be active or paused"))
    fallback_template = fields.Nested(
        ProviderTemplateSchema,
        allow_none=True,
        metadata={
            "description": "Sent instead of free text to a contact whose 24-hour window is closed, for messages "
            "without a fallback_template of their own; null removes it."
        },
    )


# What a route naming one sender answers when the provider or the sender is not one we have.
BAD_NAME = "A name no sender of that provider can have (an Evolution sender is an instance name)"
UNKNOWN = "Unknown provider or sender"


def _checked(provider: str, sender: str) -> None:
    """404 for a provider or sender we do not have; 400 for a name no sender of that provider can have (the
    same rule as a message's `sender`)."""
    catalog = context.services().catalog
    if provider not in catalog.providers:
        raise ApiError(
            404, f"provider must be one of {', '.join(catalog.providers)}", "unknown_provider", field="provider"
        )
    try:
        catalog.check_sender(provider, sender)
    except InvalidInput as invalid:
        raise ApiError.invalid(invalid, 404 if invalid.body["code"] == "unknown_sender" else 400) from None


@blueprint.get("/v1/senders")
@documented(
    answers={
        200: "`{senders: [{provider, sender, rate_per_second, burst, daily_cap, sent_today, state, paused_reason, "
        "own, current_wait_seconds}]}`"
    }
)
@require_any_key
def list_senders():
    """Senders with their rate, burst and current wait."""
    catalog = context.services().catalog
    registry = context.services().senders
    configured = {name: provider.senders for name, provider in catalog.providers.items()}
    return jsonify({"senders": [asdict(pace) for pace in registry.get_many(registry.known(configured))]})


@blueprint.get("/v1/senders/<provider>/<sender>")
@documented(answers={200: "The sender's pace, daily cap, sends today and state", 400: BAD_NAME, 404: UNKNOWN})
@require_any_key
def get_sender(provider: str, sender: str):
    """A sender's rate, burst and current wait."""
    _checked(provider, sender)
    return jsonify(asdict(context.services().senders.get(provider, sender)))


@blueprint.put("/v1/senders/<provider>/<sender>")
@documented(
    body=SenderPaceSchema,
    answers={
        200: "The sender's pace now",
        400: "A bad rate or burst, or a name no sender of that provider can have",
        404: UNKNOWN,
    },
)
@require_operator
def set_sender(provider: str, sender: str):
    """Set a sender's own rate and burst (every worker follows at once)."""
    _checked(provider, sender)
    data = load(SenderPaceSchema(), json_object())
    names = {
        "rate_per_second": "rate",
        "burst": "burst",
        "daily_cap": "daily_cap",
        "warmup_start": "warmup_start",
        "warmup_growth": "warmup_growth",
    }
    registry = context.services().senders
    pace = {names[key]: value for key, value in data.items() if key in names}
    fallback = data["fallback_template"] or {} if "fallback_template" in data else None  # {}: remove it
    updated = registry.set(provider, sender, fallback, **pace)
    if data.get("state") == "paused":
        updated = registry.pause(provider, sender, "paused by an operator")
    elif data.get("state") == "active":
        updated, _ = registry.resume(provider, sender)
    return jsonify(asdict(updated))


@blueprint.post("/v1/senders/<provider>/<sender>/pause")
@documented(answers={200: "The sender, paused", 400: BAD_NAME, 404: UNKNOWN})
@require_operator
def pause_sender(provider: str, sender: str):
    """Pause a sender; its messages are held (not failed) until it is resumed."""
    _checked(provider, sender)
    return jsonify(asdict(context.services().senders.pause(provider, sender, "paused by an operator")))


@blueprint.post("/v1/senders/<provider>/<sender>/resume")
@documented(
    answers={200: "The sender, active, and `released`: how many held messages go on", 400: BAD_NAME, 404: UNKNOWN}
)
@require_operator
def resume_sender(provider: str, sender: str):
    """Resume a paused sender (auto-paused or paused by hand); its held messages go on."""
    _checked(provider, sender)
    sender_now, released = context.services().senders.resume(provider, sender)
    return jsonify({**asdict(sender_now), "released": released})
