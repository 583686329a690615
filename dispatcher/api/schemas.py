"""Request and answer shapes, as marshmallow schemas; `/openapi.json` is generated from them."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from dispatcher import statuses

# marshmallow's text for an absent required field; null counts as absent, as it did in the seed service.
MISSING = "Missing data for required field."
EXTERNAL_ID_MAX = 255
PHONE_MAX = 32


def _text(name: str, maximum: int, **kwargs) -> fields.String:
    return fields.String(
        required=True,
        validate=[
            validate.Length(min=1, error=f"{name} must not be empty"),
            validate.Length(max=maximum, error=f"{name} must be at most {maximum} characters"),
        ],
        error_messages={"invalid": f"{name} must be a string", "null": MISSING},
        **kwargs,
    )


class SendMessageSchema(Schema):
    """POST /v1/messages/send. Unknown keys are ignored, as the seed service ignored them."""

    class Meta:
        unknown = EXCLUDE
        ordered = True

    recipient_phone = _text(
        "recipient_phone",
        PHONE_MAX,
        metadata={
            "description": "International format (+5564999998888); without a country code it is read "
            "in DEFAULT_REGION. 10 to 15 digits.",
            "example": "+5564999998888",
        },
    )
    message_body = fields.String(
        required=True,
        error_messages={"invalid": "message_body must be a string", "null": MISSING},
        metadata={
            "description": "The text to send (at most MESSAGE_BODY_MAX_CHARS, default 4096).",
            "example": "Olá! Esta é uma mensagem de teste.",
        },
    )
    external_id = _text(
        "external_id",
        EXTERNAL_ID_MAX,
        metadata={
            "description": "Your id for this message, unique per API key: a replay returns the first message.",
            "example": "campaign_123_contact_456",
        },
    )


class ProviderDetailsSchema(Schema):
    provider = fields.String(metadata={"example": "mock"})
    queued_at = fields.String(metadata={"description": "ISO-8601 UTC", "example": "2025-11-26T00:29:15.941Z"})


class SendAnswerSchema(Schema):
    status = fields.String(
        metadata={
            "description": "queued for a new message; the current status for a replay",
            "enum": list(statuses.ALL),
        }
    )
    message_id = fields.String(metadata={"example": "msg-f1d945d7-e605-4437-975b-864f7641eeff"})
    provider_details = fields.Nested(ProviderDetailsSchema)
    replayed = fields.Boolean(metadata={"description": "true when external_id had already been accepted"})


class HistoryEntrySchema(Schema):
    status = fields.String()
    at = fields.String(metadata={"description": "ISO-8601 UTC"})


class ErrorDetailSchema(Schema):
    kind = fields.String(metadata={"description": "transient, permanent, configuration or ambiguous"})
    code = fields.String()
    message = fields.String()


class MessageSchema(Schema):
    message_id = fields.String()
    external_id = fields.String()
    status = fields.String(metadata={"enum": list(statuses.ALL)})
    recipient = fields.String(metadata={"description": "masked", "example": "+5564*****8888"})
    provider = fields.String()
    provider_message_id = fields.String(allow_none=True)
    attempts = fields.Integer()
    last_error = fields.Nested(ErrorDetailSchema, allow_none=True)
    history = fields.List(fields.Nested(HistoryEntrySchema))
    created_at = fields.String()
    updated_at = fields.String()


class ErrorSchema(Schema):
    error = fields.String(required=True)
    code = fields.String()
    field = fields.String()
    details = fields.String()


class HealthSchema(Schema):
    status = fields.String(metadata={"example": "ok"})
    timestamp = fields.String(metadata={"example": "2025-11-26T00:29:15.298Z"})


class ReadinessSchema(Schema):
    status = fields.String(metadata={"enum": ["ok", "unavailable"]})
    redis = fields.String(metadata={"enum": ["ok", "unreachable"]})
    error = fields.String()
