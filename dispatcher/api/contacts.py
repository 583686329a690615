"""`/v1/opt-outs` and `/v1/contacts`: an account's opt-out list and what the dispatcher knows of one contact
(dispatcher/contacts.py). Every key sees and changes its own account's contacts only."""

from __future__ import annotations

import logging
from dataclasses import asdict

from flask import Blueprint, jsonify
from marshmallow import Schema, fields, validate

from dispatcher.api import context
from dispatcher.api.auth import account, require_api_key
from dispatcher.api.errors import ApiError
from dispatcher.api.openapi import documented, paging
from dispatcher.api.request_input import int_arg, json_object, load
from dispatcher.api.schemas import PHONE_MAX
from dispatcher.message_rules import InvalidInput, checked_recipient
from providers.base import mask_phone

log = logging.getLogger(__name__)
blueprint = Blueprint("contacts", __name__)
PAGE_MAX = 500


class OptOutSchema(Schema):
    """POST /v1/opt-outs: a number that must receive no more messages from this account."""

    recipient_phone = fields.String(
        required=True,
        validate=validate.Length(min=1, max=PHONE_MAX, error="Invalid phone number format"),
        error_messages={"invalid": "recipient_phone must be a string"},
        metadata={"example": "+5564999998888"},
    )


def _phone(raw: str) -> str:
    try:
        return checked_recipient(raw, context.services().settings.default_region)
    except InvalidInput as invalid:
        raise ApiError.invalid(invalid) from None


def _state(phone: str, opted_out: bool, changed: bool) -> dict:
    return {"recipient_phone": phone, "opted_out": opted_out, "changed": changed}


@blueprint.post("/v1/opt-outs")
@documented(
    body=OptOutSchema,
    answers={
        201: "Added: `{recipient_phone, opted_out: true, changed: true}`",
        200: "It was already on the list (`changed: false`)",
        400: "Invalid phone number format",
    },
)
@require_api_key
def add_opt_out():
    """Opt a number out of this account's messages.

    Its waiting messages are canceled when their turn comes, and new sends to it answer 422 `opted_out`. The
    account gets a `contact.opted_out` callback event.
    """
    phone = _phone(load(OptOutSchema(), json_object())["recipient_phone"])
    changed = context.services().contacts.set_opted_out(account(), phone, True)
    log.info("opted out by the API: %s", mask_phone(phone), extra={"changed": changed})
    return jsonify(_state(phone, True, changed)), 201 if changed else 200


@blueprint.delete("/v1/opt-outs/<phone>")
@documented(answers={200: "`{recipient_phone, opted_out: false, changed}`", 400: "Invalid phone number format"})
@require_api_key
def remove_opt_out(phone: str):
    """Take a number off this account's opt-out list (it may be sent to again)."""
    phone = _phone(phone)
    changed = context.services().contacts.set_opted_out(account(), phone, False)
    log.info("opted in by the API: %s", mask_phone(phone), extra={"changed": changed})
    return jsonify(_state(phone, False, changed))


@blueprint.get("/v1/opt-outs")
@documented(
    query=paging(default=100, maximum=PAGE_MAX),
    answers={
        200: "A page, newest first: `{opt_outs: [{recipient_phone, opted_out_at, source, keyword, provider, "
        "sender}], next_cursor}`",
        400: "A bad limit or cursor",
    },
)
@require_api_key
def list_opt_outs():
    """This account's opted-out numbers, with when and how each came (reply, provider or api)."""
    limit = int_arg("limit", 100, 1, PAGE_MAX)
    offset = int_arg("cursor", 0, 0, None)
    page, next_offset = context.services().contacts.page(account(), offset, limit)
    return jsonify(
        {
            "opt_outs": [asdict(entry) for entry in page],
            "next_cursor": str(next_offset) if next_offset is not None else None,
        }
    )


@blueprint.get("/v1/contacts/<phone>")
@documented(
    answers={
        200: "`{recipient_phone, opted_out, opted_out_at, history, senders: [{provider, sender, last_inbound_at, "
        "window_open_until, window_enforced}], messages_today, daily_cap, sticky_members}`",
        400: "Invalid phone number format",
    }
)
@require_api_key
def get_contact(phone: str):
    """What this account's rules know of one contact.

    Its opt-out state and history, its last message to each sender and until when that sender's 24-hour window is
    open, this account's messages to it today (against CONTACT_DAILY_CAP), and the member of each sticky pool
    that last wrote to it.
    """
    services = context.services()
    phone = _phone(phone)
    return jsonify(services.contacts.view(account(), phone, services.pools.names()))
