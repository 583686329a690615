"""Request and answer shapes, as marshmallow schemas; `/openapi.json` is generated from them."""

from __future__ import annotations

from marshmallow import EXCLUDE, INCLUDE, Schema, ValidationError, fields, validate

from dispatcher import statuses
from dispatcher.names import SENDER_MAX
from providers.base import MEDIA_KINDS

# marshmallow's text for an absent required field; null counts as absent, as it did in the legacy system.
MISSING = "Missing data for required field."
EXTERNAL_ID_MAX = 255
PHONE_MAX = 32
# The longest template (ours, and the legacy API's `message` and `caption`): parsing is linear, and this bounds it.
TEMPLATE_MAX = 4096


def _no_control_characters(name: str) -> validate.Regexp:
    """marshmallow's URL check lets a NUL or an escape byte through (its path part is `\\S+`); a URL we or a
    provider will fetch must not carry one: it would fail at delivery, or worse, reach a lenient parser."""
    return validate.Regexp(r"^[^\x00-\x1f\x7f]*\Z", error=f"{name} must not contain control characters")


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


class MediaSchema(Schema):
    """A file sent by URL: an image, a document, a video or an audio."""

    class Meta:
        ordered = True

    url = fields.Url(
        required=True,
        schemes={"http", "https"},
        require_tld=False,
        validate=_no_control_characters("media.url"),
        error_messages={"invalid": "media.url must be an http(s) URL", "required": MISSING},
        metadata={
            "description": "The provider downloads it: private addresses are refused unless CALLBACK_URL_ALLOWLIST "
            "allows them.",
            "example": "https://example.com/menu.pdf",
        },
    )
    type = fields.String(
        required=True,
        validate=validate.OneOf(MEDIA_KINDS, error="media.type must be one of {choices}"),
        metadata={"example": "document"},
    )
    caption = fields.String(validate=validate.Length(max=1024, error="media.caption must be at most 1024 characters"))
    mimetype = fields.String(validate=validate.Length(max=127))
    filename = fields.String(validate=validate.Length(max=255), metadata={"example": "menu.pdf"})


class ProviderTemplateSchema(Schema):
    """A template approved at the provider: Meta's name, language and components; Twilio's ContentSid and
    ContentVariables (as `name` and `variables`)."""

    class Meta:
        ordered = True

    name = fields.String(
        required=True, validate=validate.Length(min=1, max=512), metadata={"example": "appointment_reminder"}
    )
    language = fields.String(validate=validate.Length(max=16), metadata={"example": "pt_BR"})
    components = fields.List(
        fields.Dict(), metadata={"description": "Meta's template components, as its API takes them"}
    )
    variables = fields.Dict(keys=fields.String(), metadata={"description": "Twilio ContentVariables"})


class RouteSchema(Schema):
    """How a message goes out; shared by the single and the bulk bodies."""

    provider = fields.String(
        validate=validate.Length(min=1, max=32, error="provider must be 1 to 32 characters"),
        error_messages={"invalid": "provider must be a string"},
        metadata={"description": "One of WHATSAPP_PROVIDERS; default WHATSAPP_PROVIDER."},
    )
    sender = fields.String(
        validate=validate.Length(min=1, max=SENDER_MAX, error=f"sender must be 1 to {SENDER_MAX} characters"),
        error_messages={"invalid": "sender must be a string"},
        metadata={
            "description": "The sending number or instance (an Evolution instance, a Twilio From or "
            "Messaging Service SID, a Meta phone-number id); default: the provider's first."
        },
    )
    pool = fields.String(
        validate=validate.Length(min=1, max=64, error="pool must be 1 to 64 characters"),
        error_messages={"invalid": "pool must be a string"},
        metadata={
            "description": "Send through a sender pool (PUT /v1/pools/<name>) instead of one sender: each message "
            "goes to the member that can send it soonest. Not with `sender` or `provider`."
        },
    )
    media = fields.Nested(MediaSchema, metadata={"description": "Send a file; the message text becomes its caption."})
    send_at = fields.AwareDateTime(
        format="iso",
        error_messages={
            "invalid": "send_at must be an ISO-8601 date and time",
            "invalid_awareness": "send_at must include a time zone, e.g. 2026-12-01T09:00:00-03:00",
        },
        metadata={
            "description": "Hold the message until then (status scheduled); past or absent: send now.",
            "example": "2026-12-01T09:00:00-03:00",
        },
    )
    fallback_template = fields.Nested(
        ProviderTemplateSchema,
        metadata={
            "description": "A provider template (Meta, Twilio) sent instead of the text when the contact has not "
            "written in the last 24 hours (WhatsApp allows only templates then); without it such a send is refused "
            "`outside_session_window`. A sender may have its own (PUT /v1/senders/...)."
        },
    )
    valid_for = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, error="valid_for must be a whole number of seconds, at least 1"),
        error_messages={"invalid": "valid_for must be a whole number of seconds"},
        metadata={
            "description": "Seconds the message may wait unsent, from its send_at (else from now): past them it "
            "becomes `expired` and is never sent. At most MESSAGE_RETENTION_DAYS; not with `expires_at`; "
            "default MESSAGE_VALIDITY_SECONDS (unset: no limit).",
            "example": 3600,
        },
    )
    expires_at = fields.AwareDateTime(
        format="iso",
        error_messages={
            "invalid": "expires_at must be an ISO-8601 date and time",
            "invalid_awareness": "expires_at must include a time zone, e.g. 2026-12-01T18:00:00-03:00",
        },
        metadata={
            "description": "The message is never sent after then: still unsent, it becomes `expired`. In the "
            "future, after send_at, at most MESSAGE_RETENTION_DAYS ahead; not with `valid_for`.",
            "example": "2026-12-01T18:00:00-03:00",
        },
    )
    callback_url = fields.Url(
        schemes={"http", "https"},
        require_tld=False,
        validate=[
            validate.Length(max=2048, error="callback_url must be at most 2048 characters"),
            _no_control_characters("callback_url"),
        ],
        error_messages={"invalid": "callback_url must be an http(s) URL"},
        metadata={
            "description": "Where this message's status events (and replies to it) are POSTed, signed; "
            "default STATUS_WEBHOOK_URL. Private addresses are refused unless CALLBACK_URL_ALLOWLIST allows them.",
            "example": "https://reach-town.example.com/hooks/whatsapp",
        },
    )


class SendMessageSchema(RouteSchema):
    """POST /v1/messages/send. Unknown keys are ignored, as the legacy system ignored them."""

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
    template = fields.Nested(
        ProviderTemplateSchema, metadata={"description": "Send a provider template (Meta, Twilio) instead of text."}
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
    """One step of a message's history. Open: each step adds its own details (attempt, until, reason,
    provider_status, error, ...), so a client must not refuse a key it does not know."""

    class Meta:
        unknown = INCLUDE

    status = fields.String()
    at = fields.String(metadata={"description": "ISO-8601 UTC"})
    source = fields.String(metadata={"description": "where the change came from, e.g. `meta webhook`"})
    member = fields.String(metadata={"description": "a pool's message given a member (`provider/sender`)"})
    pool = fields.String(metadata={"description": "with `member`: the pool"})


class ErrorDetailSchema(Schema):
    kind = fields.String(metadata={"description": "transient, permanent, configuration, ambiguous or provider"})
    code = fields.String(allow_none=True, metadata={"description": "null when a provider's report gave none"})
    message = fields.String(allow_none=True)


class MessageSchema(Schema):
    message_id = fields.String()
    external_id = fields.String()
    status = fields.String(metadata={"enum": list(statuses.ALL)})
    recipient = fields.String(metadata={"description": "masked", "example": "+55********888"})
    provider = fields.String(metadata={"description": "empty for a pool's message not given its member yet"})
    sender = fields.String(allow_none=True, metadata={"description": "the sender; for a pool's message, its member"})
    pool = fields.String(allow_none=True, metadata={"description": "the sender pool it goes through"})
    provider_message_id = fields.String(allow_none=True)
    attempts = fields.Integer()
    last_error = fields.Nested(ErrorDetailSchema, allow_none=True)
    history = fields.List(fields.Nested(HistoryEntrySchema))
    created_at = fields.String()
    updated_at = fields.String()
    expires_at = fields.String(
        allow_none=True, metadata={"description": "ISO-8601 UTC: still unsent then, it becomes expired; null: no limit"}
    )
    fallback_template_used = fields.Boolean(
        metadata={"description": "sent as its fallback_template: the contact's 24-hour window was closed"}
    )


class ErrorSchema(Schema):
    """Every error answer of the /v1 API. Besides `error`, `code` and `field`, some errors carry the keys
    listed here (a closed list, so /openapi.json says exactly what a client may meet)."""

    error = fields.String(required=True)
    code = fields.String()
    field = fields.String()
    details = fields.String()
    fields_ = fields.List(
        fields.String(), data_key="fields", metadata={"description": "missing_fields: every missing field"}
    )
    limit = fields.Integer(metadata={"description": "too_many_rows: BULK_MAX_MESSAGES"})
    message_id = fields.String(metadata={"description": "idempotency_conflict: the message already accepted"})
    state = fields.String(metadata={"description": "illegal_transition: the batch's state"})
    current_status = fields.String(metadata={"description": "retry or cancel refused: the message's status"})
    evolution = fields.Raw(metadata={"description": "Evolution API's own error answer, relayed"})


class HealthSchema(Schema):
    status = fields.String(metadata={"example": "ok"})
    timestamp = fields.String(metadata={"example": "2025-11-26T00:29:15.298Z"})


class ReadinessSchema(Schema):
    status = fields.String(metadata={"enum": ["ok", "unavailable"]})
    redis = fields.String(metadata={"enum": ["ok", "unreachable"]})
    error = fields.String()
    workers = fields.Integer(metadata={"description": "how many workers were heard from in the last minute"})
    workers_seen = fields.List(
        fields.String(), metadata={"description": "their names (host names): with an operator's key only"}
    )
    queue_depth = fields.Integer(metadata={"description": "Celery tasks waiting in the broker's queue"})
    warning = fields.String(metadata={"description": "present when no worker consumed the queue in the last minute"})


def _scalar_values(variables: dict) -> None:
    if not all(value is None or isinstance(value, str | int | float | bool) for value in variables.values()):
        raise ValidationError("variables must hold text or numbers, not lists or objects")


class BulkRowSchema(Schema):
    """One row of a bulk request."""

    class Meta:
        unknown = EXCLUDE
        ordered = True

    recipient_phone = _text("recipient_phone", PHONE_MAX, metadata={"example": "+5564999998888"})
    external_id = _text("external_id", EXTERNAL_ID_MAX, metadata={"example": "campaign_123_contact_456"})
    message_body = fields.String(
        error_messages={"invalid": "message_body must be a string"},
        metadata={"description": "This row's own text; wins over the template."},
    )
    variables = fields.Dict(
        keys=fields.String(),
        validate=_scalar_values,
        error_messages={"invalid": "variables must be an object"},
        metadata={
            "description": "Values for the template's {{placeholders}} (text or numbers).",
            "example": {"name": "Ana"},
        },
    )


class BulkRequestSchema(RouteSchema):
    """POST /v1/messages/bulk. Rows are validated one by one: a bad row is reported, not fatal."""

    class Meta:
        unknown = EXCLUDE
        ordered = True

    messages = fields.List(
        fields.Nested(BulkRowSchema),
        required=True,
        metadata={"description": "Up to BULK_MAX_MESSAGES rows (default 10,000)."},
    )
    template = fields.String(
        validate=validate.Length(max=TEMPLATE_MAX, error=f"template must be at most {TEMPLATE_MAX} characters"),
        error_messages={"invalid": "template must be a string"},
        metadata={
            "description": "Text with {{variable}} or {{variable|fallback}} placeholders, for rows "
            "without their own message_body.",
            "example": "Olá {{name}}! {{city|}}",
        },
    )


class RowResultSchema(Schema):
    index = fields.Integer()
    external_id = fields.Raw()
    message_id = fields.String(metadata={"description": "present when the row has a message"})
    replayed = fields.Boolean(metadata={"description": "true when the external_id had already been accepted"})
    error = fields.String(metadata={"description": "present when the row was refused"})
    code = fields.String()
    field = fields.String()


class BulkAnswerSchema(Schema):
    batch_id = fields.String(allow_none=True, metadata={"description": "null when no row created a new message"})
    accepted = fields.Integer()
    rejected = fields.Integer()
    results = fields.List(fields.Nested(RowResultSchema))


class BatchSchema(Schema):
    batch_id = fields.String()
    state = fields.String(metadata={"enum": ["running", "paused", "canceled", "completed"]})
    total = fields.Integer()
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={"description": "messages by status"})
    progress = fields.Float(metadata={"description": "finished / total, 0 to 1"})
    rate_per_second = fields.Float(metadata={"description": "messages finished per second, last 10 s"})
    eta_seconds = fields.Float(allow_none=True)
    created_at = fields.String()
    finished_at = fields.String(allow_none=True)
    canceled_now = fields.Integer(metadata={"description": "cancel only: messages this request canceled"})


class BatchMessagesSchema(Schema):
    messages = fields.List(fields.Nested(MessageSchema))
    next_cursor = fields.String(
        allow_none=True, metadata={"description": "pass as cursor for the next page; null at the end"}
    )


class QueueStatusSchema(Schema):
    queue = fields.String(metadata={"example": "message-dispatch-queue"})
    tasks_in_broker = fields.Integer(
        metadata={"description": "Celery tasks waiting in Redis (a batch chunk counts once)"}
    )
    waiting = fields.Integer(metadata={"description": "messages queued"})
    active = fields.Integer(metadata={"description": "messages being sent"})
    retrying = fields.Integer(metadata={"description": "messages scheduled for another attempt"})
    failed = fields.Integer()
    held_by_pacing = fields.Integer(metadata={"description": "messages waiting for their sender's pacing slot"})
    held_by_pools = fields.Integer(metadata={"description": "messages a sender pool holds: no member can send"})
    held_by_schedule = fields.Integer(metadata={"description": "messages scheduled for later (send_at)"})
    callbacks_waiting = fields.Integer(
        metadata={"description": "messages (and batches, reply threads) with status callbacks still to deliver"}
    )
    callbacks_dead = fields.Integer(metadata={"description": "callbacks that gave up: GET /v1/webhooks/deliveries"})
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={"description": "messages by status"})
    workers = fields.List(fields.String(), metadata={"description": "workers that answered a ping"})
    workers_online = fields.Integer()
    warning = fields.String(metadata={"description": "present when no worker consumed the queue in the last minute"})
