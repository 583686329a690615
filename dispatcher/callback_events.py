"""The events we POST to a caller's callback_url: their one definition.

They are written in two places, so neither can be their definition: the Lua of the outbox (`report_status`
and `report_batch` in lua/lib/outbox.lua: `message.<status>` and `batch.completed`) and
`dispatcher/status_reports.py` (`message.received`, completed by receive.lua), and lua/lib/contacts.lua
(`contact.opted_out` and `contact.opted_in`). These schemas are: /openapi.json
publishes them (components and `x-webhooks`, dispatcher/api/docs.py), and the tests' fake receiver checks
every event it is delivered against them, so an event that drifts from its documentation fails a test. Every
field is always present (null when it has no value) and no other field may come.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from dispatcher import statuses

_AT = "when it happened: ISO-8601 UTC with milliseconds (2026-11-25T12:00:03.512Z)"


def _text(description: str, nullable: bool = False) -> fields.String:
    return fields.String(required=True, allow_none=nullable, metadata={"description": description})


class EventErrorSchema(Schema):
    code = _text("the provider's error code, or ours (timeout, lease_expired, ...)")
    message = _text("what went wrong, redacted: never the recipient's number or the message's text")


class MessageStatusEventSchema(Schema):
    """A message reached a finished status: sent, delivered, read, failed, canceled or expired (not sent within
    its validity)."""

    event_id = _text("`<message_id>.<n>`, the message's n-th event: deduplicate on it")
    type = fields.String(required=True, validate=validate.OneOf([f"message.{s}" for s in statuses.FINISHED]))
    message_id = _text("our id of the message")
    external_id = _text("the caller's id of the message", nullable=True)
    batch_id = _text("its batch, for a bulk row", nullable=True)
    status = fields.String(required=True, validate=validate.OneOf(statuses.FINISHED))
    at = _text(_AT)
    error = fields.Nested(EventErrorSchema, required=True, allow_none=True, metadata={"description": "for failed"})
    provider = _text("the provider it went (or was to go) through", nullable=True)
    sender = _text("the sender it went (or was to go) from; for a pool's message, the member chosen", nullable=True)
    pool = _text("the sender pool it was sent through", nullable=True)


class BatchCountsSchema(Schema):
    sent = fields.Integer(required=True)
    delivered = fields.Integer(required=True)
    read = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    canceled = fields.Integer(required=True)
    expired = fields.Integer(required=True)


class BatchCompletedEventSchema(Schema):
    """A batch has no row left to finish (again, with a new event id, after its failed rows are retried)."""

    event_id = _text("`<batch_id>.completed.<n>`, the batch's n-th completion")
    type = fields.String(required=True, validate=validate.Equal("batch.completed"))
    batch_id = _text("our id of the batch")
    state = fields.String(required=True, validate=validate.OneOf([statuses.COMPLETED, statuses.CANCELED]))
    total = fields.Integer(required=True, metadata={"description": "the batch's rows"})
    counts = fields.Nested(BatchCountsSchema, required=True, metadata={"description": "its rows by status"})
    at = _text(_AT)


class ReceivedMediaSchema(Schema):
    url = _text("a URL (Evolution, Twilio) or, for Meta, the media id")
    kind = _text("image, document, video, audio or sticker")
    mimetype = _text("as the provider says")


class RepliedMessageSchema(Schema):
    message_id = _text("our id of the message the contact answered")
    external_id = _text("the caller's id of it", nullable=True)
    batch_id = _text("its batch", nullable=True)


class MessageReceivedEventSchema(Schema):
    """A contact wrote to one of our senders (a reply)."""

    event_id = _text("`received.<provider>.<provider_message_id>`")
    type = fields.String(required=True, validate=validate.Equal("message.received"))
    provider = _text("the provider it came through")
    provider_message_id = _text("the provider's id of the contact's message")
    from_ = fields.String(
        required=True, data_key="from", metadata={"description": "E.164; empty when the provider hides the number"}
    )
    to = _text("which of our senders got it: Evolution instance, Twilio number, Meta phone_number_id")
    profile_name = _text("the contact's WhatsApp name", nullable=True)
    text = _text("the message's text", nullable=True)
    media = fields.Nested(ReceivedMediaSchema, required=True, allow_none=True)
    in_reply_to = fields.Nested(
        RepliedMessageSchema,
        required=True,
        allow_none=True,
        metadata={"description": "the message it answers, when the provider says which"},
    )
    at = _text(_AT)


class ContactEventSchema(Schema):
    """A number went on the account's opt-out list (`contact.opted_out`: its waiting messages are canceled, new
    sends to it refused) or came off it (`contact.opted_in`)."""

    event_id = _text("`contact.<opted_out|opted_in>.<digest>`: deduplicate on it")
    type = fields.String(required=True, validate=validate.OneOf(["contact.opted_out", "contact.opted_in"]))
    recipient_phone = _text("the contact, E.164")
    source = fields.String(
        required=True,
        validate=validate.OneOf(["reply", "provider", "api"]),
        metadata={"description": "a reply's keyword, the provider's word (Meta's marketing preference), or the API"},
    )
    keyword = _text("the keyword of the reply, as compared (upper case, no accents)", nullable=True)
    provider = _text("the provider the reply or preference came through", nullable=True)
    sender = _text("the sender it came to", nullable=True)
    at = _text(_AT)


# Event type → its schema: what a delivered event is checked against.
EVENTS: dict[str, type[Schema]] = {
    **{f"message.{status}": MessageStatusEventSchema for status in statuses.FINISHED},
    "batch.completed": BatchCompletedEventSchema,
    "message.received": MessageReceivedEventSchema,
    "contact.opted_out": ContactEventSchema,
    "contact.opted_in": ContactEventSchema,
}
