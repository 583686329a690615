"""Evolution API webhooks: `messages.update` (our messages' statuses), `messages.upsert` (replies) and
`connection.update` (an instance lost or got back its connection: a pool's member falls or returns).

Evolution signs nothing. We configure a shared secret ourselves: as a header through the webhook's
`headers` setting, or as `?token=` in the URL we give it; the caller passes whichever came.

Shapes, from Evolution's source (the docs lag behind it):
- v2 `messages.update` data: `{"keyId","remoteJid","fromMe","participant","status","instanceId","messageId"?}`.
  `keyId` is the `key.id` sendText answered; `messageId` is Evolution's own database row id, never ours.
  Baileys' numeric statuses are turned into words, and any update without a status (an edit, a poll
  vote) arrives as "DELETED". The WHATSAPP-BUSINESS integration sends Meta's word upper-cased.
- v1 spread the key into the data (`{"id","remoteJid","fromMe","status","datetime"}`); Baileys' own event
  is `{"key":{...},"update":{"status":<0-5>}}`. Both are read too.
- The envelope's `date_time` is the Evolution server's local wall time labelled "Z" (it subtracts the
  timezone offset before toISOString), so it is not used as the event time.
- `messages.upsert` data: `{"key":{"remoteJid","fromMe","id"},"pushName","message":{...},"contextInfo"?,
  "messageType","messageTimestamp"}`. Some versions fold `extendedTextMessage` into `conversation` and keep
  its `contextInfo` only at the top of `data`; the WHATSAPP-BUSINESS integration puts it in `message`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from providers.inbound import (
    DELIVERED,
    FAILED,
    READ,
    SENT,
    InboundAdapter,
    InboundEvent,
    IncomingMessage,
    SenderState,
    StatusReport,
    WebhookMalformed,
    WebhookRejected,
    WebhookRequest,
    e164,
    object_of,
    require_credential,
    same,
    text_of,
    unix_time,
)

PROVIDER = "evolution"
SECRET_HEADER = "X-Webhook-Secret"
UPDATE, UPSERT, CONNECTION = "messages.update", "messages.upsert", "connection.update"
# connection.update states that mean the instance cannot send; `connecting` is neither up nor down yet.
DOWN_STATES, UP_STATES = ("close", "refused"), ("open",)

BAILEYS_STATUS = {0: "ERROR", 1: "PENDING", 2: "SERVER_ACK", 3: "DELIVERY_ACK", 4: "READ", 5: "PLAYED"}
# PENDING (still on the phone) and DELETED (no status at all) are left out: nothing to record.
STATUSES = {
    "SERVER_ACK": SENT,
    "DELIVERY_ACK": DELIVERED,
    "READ": READ,
    "PLAYED": READ,
    "ERROR": FAILED,
    # the WHATSAPP-BUSINESS integration: Meta's words, upper-cased
    "SENT": SENT,
    "DELIVERED": DELIVERED,
    "FAILED": FAILED,
}
MEDIA = {
    "imageMessage": "image",
    "videoMessage": "video",
    "ptvMessage": "video",
    "documentMessage": "document",
    "audioMessage": "audio",
    "stickerMessage": "sticker",
}
# Envelopes WhatsApp puts around the real content (disappearing messages, view once, captioned documents).
WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
)
# Keys that carry no content of the contact's: a message made only of these is not a reply.
NOT_CONTENT = frozenset(
    {
        "protocolMessage",  # revokes and edits
        "senderKeyDistributionMessage",
        "messageContextInfo",
        "pollUpdateMessage",
        "contextInfo",
        "base64",  # Evolution's additions beside the content
        "mediaUrl",
        "speechToText",
    }
)
# Where the text of a reply may be, in order: (field of `message`, key inside it or None for the field itself).
TEXT_FIELDS = (
    ("conversation", None),
    ("extendedTextMessage", "text"),
    ("buttonsResponseMessage", "selectedDisplayText"),
    ("templateButtonReplyMessage", "selectedDisplayText"),
    ("listResponseMessage", "title"),
    ("reactionMessage", "text"),
)
# Chats that are not one contact writing to us: groups, broadcast lists and status, channels.
NOT_A_CONTACT = ("@g.us", "@broadcast", "@newsletter")


@dataclass(frozen=True)
class EvolutionWebhook(InboundAdapter):
    """Evolution API webhook: its events messages.update, messages.upsert and connection.update.

    Set it on each instance with `POST /webhook/set/<instance>`, events MESSAGES_UPDATE,
    MESSAGES_UPSERT and CONNECTION_UPDATE, and header `X-Webhook-Secret: <EVOLUTION_WEBHOOK_SECRET>` (or add
    `?token=<EVOLUTION_WEBHOOK_SECRET>` to the URL where headers cannot be set).
    """

    BODY_DOC: ClassVar[str] = "An Evolution event: {event, instance, data}"
    ANSWERS: ClassVar[dict[int, str]] = {
        200: "Verified and applied (a report before our sent is kept, and applied then)",
        400: "Not an Evolution event",
        401: "No secret",
        403: "Wrong secret, or EVOLUTION_WEBHOOK_SECRET not set",
    }

    provider: ClassVar[str] = PROVIDER
    SECRETS: ClassVar[dict[str, str]] = {"secret": "EVOLUTION_WEBHOOK_SECRET"}
    secret: str = ""

    def verify(self, request: WebhookRequest) -> None:
        verify(self.secret, request.headers.get(SECRET_HEADER) or request.args.get("token"))

    def parse(self, payload: object) -> list[InboundEvent]:
        return parse(payload)


def verify(secret: str, given: str | None) -> None:
    """Accept the request only when it carries our shared secret (compared in constant time)."""
    given = require_credential(secret, given, PROVIDER, "EVOLUTION_WEBHOOK_SECRET")
    if not same(secret, given):
        raise WebhookRejected("evolution webhook secret does not match", 403)


def parse(payload: object) -> list[InboundEvent]:
    """The statuses and replies in one Evolution webhook body; other events give an empty list."""
    if not isinstance(payload, dict):
        raise WebhookMalformed("evolution webhook body is not a JSON object")
    event = payload.get("event")
    if not isinstance(event, str) or not event.strip():
        raise WebhookMalformed("evolution webhook without `event`")
    name = event.strip().lower().replace("_", ".")
    if name == CONNECTION:
        return _connection(payload)
    if name not in (UPDATE, UPSERT):
        return []
    items = _items(payload.get("data"), name)
    if name == UPDATE:
        return [report for item in items if (report := _status(item)) is not None]
    instance = payload.get("instance")
    if not isinstance(instance, str) or not instance:
        raise WebhookMalformed("evolution messages.upsert without `instance`")
    return [message for item in items if (message := _incoming(item, instance)) is not None]


def _connection(payload: dict) -> list[InboundEvent]:
    """An instance opened or lost its connection to WhatsApp: data `{instance, state, statusReason}`."""
    data = object_of(payload.get("data"))
    instance = text_of(data.get("instance") or payload.get("instance"))
    state = text_of(data.get("state")).strip().lower()
    if not instance or not state:
        raise WebhookMalformed("evolution connection.update without `instance` and `state`")
    if state not in DOWN_STATES + UP_STATES:
        return []
    reason = text_of(data.get("statusReason"))
    return [SenderState(PROVIDER, instance, state in UP_STATES, state, reason)]


def _items(data: object, name: str) -> list[dict]:
    """`data` is one object, or a list of them when Evolution batches."""
    given = data if isinstance(data, list) else [data]
    items = [item for item in given if isinstance(item, dict)]
    if not items or len(items) < len(given):
        raise WebhookMalformed(f"evolution {name} without a `data` object")
    return items


def _status(item: dict) -> StatusReport | None:
    key = object_of(item.get("key"))
    update = object_of(item.get("update"))
    message_id = text_of(item.get("keyId") or key.get("id") or item.get("id"))
    if not message_id:
        raise WebhookMalformed("evolution messages.update without `keyId`")
    if item.get("fromMe", key.get("fromMe")) is False:
        return None  # a contact's message that we read on the phone: not one of ours
    word = _status_word(item.get("status", update.get("status")))
    status = STATUSES.get(word)
    if status is None:
        return None
    return StatusReport(
        provider=PROVIDER,
        provider_message_id=message_id,
        status=status,
        event_key=f"{message_id}:{word}",
        at=unix_time(item.get("datetime")),  # v1 only (Date.now(), true UTC); v2 sends no event time
        error_message=f"Evolution reported {word}" if status == FAILED else "",
        provider_status=word,
    )


def _status_word(raw: object) -> str:
    """Baileys' 0-5, as a number or a digit string, or already a word."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return BAILEYS_STATUS.get(raw, str(raw))
    word = text_of(raw).strip().upper()
    return BAILEYS_STATUS.get(int(word), word) if word.isdigit() else word


def _incoming(item: dict, instance: str) -> IncomingMessage | None:
    key = item.get("key")
    if not isinstance(key, dict) or not text_of(key.get("id")) or not isinstance(key.get("remoteJid"), str):
        raise WebhookMalformed("evolution messages.upsert without `key.id` and `key.remoteJid`")
    jid = key["remoteJid"]
    if key.get("fromMe") is True or jid.endswith(NOT_A_CONTACT):
        return None
    message = _unwrap(item.get("message"))
    if not message or not (set(message) - NOT_CONTENT):
        return None  # a stub, a revoke or an edit: nothing the contact wrote
    reaction = message.get("reactionMessage")
    if isinstance(reaction, dict) and not text_of(reaction.get("text")):
        return None  # a reaction taken back
    kind, media = _media(message)
    message_id = text_of(key["id"])
    return IncomingMessage(
        provider=PROVIDER,
        provider_message_id=message_id,
        from_phone=e164(_phone_jid(key, item)),
        to=instance,
        event_key=f"in:{message_id}",
        text=_text(message) or text_of(media.get("caption")),
        # mediaUrl is Evolution's S3 copy; `url` is WhatsApp's encrypted (.enc) CDN file; the business
        # integration gives Meta's media id
        media_url=text_of(message.get("mediaUrl") or media.get("url") or media.get("id")),
        media_kind=kind,
        media_mimetype=text_of(media.get("mimetype") or media.get("mime_type")),
        in_reply_to=_in_reply_to(message, item),
        profile_name=text_of(item.get("pushName")),
        at=unix_time(item.get("messageTimestamp")),
    )


def _unwrap(message: object) -> dict:
    for _ in range(3):  # wrappers nest at most a couple deep
        if not isinstance(message, dict):
            return {}
        inner = next((message[w].get("message") for w in WRAPPERS if isinstance(message.get(w), dict)), None)
        if not isinstance(inner, dict):
            return message
        message = inner
    return message if isinstance(message, dict) else {}


def _phone_jid(key: dict, item: dict) -> str:
    """With WhatsApp's LIDs (`...@lid`) the number is elsewhere, when Evolution has it."""
    jid = key["remoteJid"]
    if not jid.endswith("@lid"):
        return jid
    for alternative in (key.get("remoteJidAlt"), key.get("senderPn"), item.get("senderPn")):
        if isinstance(alternative, str) and alternative.endswith("@s.whatsapp.net"):
            return alternative
    return ""


def _media(message: dict) -> tuple[str, dict]:
    for field, kind in MEDIA.items():
        if isinstance(message.get(field), dict):
            return kind, message[field]
    return "", {}


def _text(message: dict) -> str:
    for field, inner in TEXT_FIELDS:
        value = message.get(field)
        if inner is not None:
            value = value.get(inner) if isinstance(value, dict) else None
        if text := text_of(value):
            return text
    return ""


def _in_reply_to(message: dict, item: dict) -> str:
    reaction = message.get("reactionMessage")
    if isinstance(reaction, dict) and isinstance(reaction.get("key"), dict):
        return text_of(reaction["key"].get("id"))
    places = [value for value in message.values() if isinstance(value, dict)] + [message, item]
    for place in places:
        context = place.get("contextInfo")
        if isinstance(context, dict) and (stanza := text_of(context.get("stanzaId"))):
            return stanza
    return ""
