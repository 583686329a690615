"""Meta WhatsApp Cloud API webhooks: the GET subscription handshake, and POSTed `messages` changes holding
our messages' statuses (`value.statuses`) and replies (`value.messages`).

Deliveries are signed with `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(key=App Secret, msg=raw body)>`.
The HMAC covers the bytes Meta sent: parsing and re-serialising changes them (non-ASCII kept or escaped,
spacing, "\\/"), so a re-serialised body stops matching as soon as, say, a contact's name has an accent.
"""

from __future__ import annotations

import hashlib
import hmac
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
    PreferenceChange,
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
from providers.redaction import redact

PROVIDER = "meta"
PREFIX = "sha256="
STATUSES = {"sent": SENT, "delivered": DELIVERED, "read": READ, "played": READ, "failed": FAILED}
MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")
# Message types that are not the contact writing to us: a number change, a first-time chat opening.
NOT_REPLIES = frozenset({"system", "request_welcome"})


@dataclass(frozen=True)
class MetaWebhook(InboundAdapter):
    """Meta WhatsApp Cloud API webhook: its notifications (statuses and messages).

    Verified with `X-Hub-Signature-256` (HMAC-SHA256 of the raw body, keyed by META_APP_SECRET).
    """

    BODY_DOC: ClassVar[str] = "{object: whatsapp_business_account, entry}"
    ANSWERS: ClassVar[dict[int, str]] = {
        200: "Verified and applied",
        400: "Not a WhatsApp notification",
        401: "No signature",
        403: "Wrong signature, or META_APP_SECRET not set",
    }
    HANDSHAKE_QUERY: ClassVar[tuple[str, ...]] = ("hub.mode", "hub.verify_token", "hub.challenge")
    HANDSHAKE_ANSWERS: ClassVar[dict[int, str]] = {
        200: "The challenge, echoed",
        403: "Wrong verify token, or META_WEBHOOK_VERIFY_TOKEN not set",
    }

    provider: ClassVar[str] = PROVIDER
    SECRETS: ClassVar[dict[str, str]] = {"app_secret": "META_APP_SECRET", "verify_token": "META_WEBHOOK_VERIFY_TOKEN"}
    handshake: ClassVar[bool] = True
    app_secret: str = ""
    verify_token: str = ""

    def verify(self, request: WebhookRequest) -> None:
        verify(self.app_secret, request.body, request.headers.get("X-Hub-Signature-256"))

    def parse(self, payload: object) -> list[InboundEvent]:
        return parse(payload)

    def subscribe(self, request: WebhookRequest) -> str:
        """Meta webhook verification: its subscription handshake."""
        args = request.args
        return verify_subscription(
            self.verify_token, args.get("hub.mode"), args.get("hub.verify_token"), args.get("hub.challenge")
        )


def verify_subscription(verify_token: str, mode: str | None, token: str | None, challenge: str | None) -> str:
    """The GET handshake Meta makes when the webhook is set up: answer its challenge only when it brings
    our verify token. Always 403 otherwise, which is what Meta expects."""
    if not verify_token:
        raise WebhookRejected("meta webhooks are not configured: set META_WEBHOOK_VERIFY_TOKEN", 403)
    if mode != "subscribe" or not token or not same(verify_token, token):
        raise WebhookRejected("meta subscription without hub.mode=subscribe and our hub.verify_token", 403)
    if challenge is None:
        raise WebhookRejected("meta subscription without hub.challenge", 403)
    return challenge


def verify(app_secret: str, raw_body: bytes, given: str | None) -> None:
    """Accept the request only when X-Hub-Signature-256 is the HMAC of exactly these bytes."""
    given = require_credential(app_secret, given, PROVIDER, "META_APP_SECRET")
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    if not given.startswith(PREFIX) or not same(PREFIX + expected, PREFIX + given[len(PREFIX) :].lower()):
        raise WebhookRejected("meta X-Hub-Signature-256 does not match the body", 403)


def parse(payload: object) -> list[InboundEvent]:
    """The statuses, replies and marketing preferences in one Meta delivery (it may batch several); other fields
    give nothing."""
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        raise WebhookMalformed("meta webhook without an `entry` list")
    events: list[InboundEvent] = []
    for entry in payload["entry"]:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            raise WebhookMalformed("meta webhook entry without a `changes` list")
        for change in changes:
            field = change.get("field") if isinstance(change, dict) else None
            if field not in ("messages", "user_preferences"):
                continue
            value = change.get("value")
            if not isinstance(value, dict):
                raise WebhookMalformed(f"meta {field} change without a `value` object")
            if field == "user_preferences":
                events += [pref for item in _list(value, "user_preferences") if (pref := _preference(item, value))]
                continue
            events += [report for status in _list(value, "statuses") if (report := _status(status))]
            events += [message for item in _list(value, "messages") if (message := _incoming(item, value))]
    return events


def _preference(item: dict, value: dict) -> PreferenceChange | None:
    """A contact stopped (`stop`) or resumed (`resume`) marketing messages from the number; other categories
    and values are not opt-outs."""
    choice, phone = text_of(item.get("value")).lower(), e164(item.get("wa_id"))
    if text_of(item.get("category")) != "marketing_messages" or choice not in ("stop", "resume") or not phone:
        return None
    return PreferenceChange(
        provider=PROVIDER,
        to=text_of(object_of(value.get("metadata")).get("phone_number_id")),
        phone=phone,
        opted_out=choice == "stop",
        at=unix_time(item.get("timestamp")),
    )


def _list(value: dict, name: str) -> list[dict]:
    items = value.get(name) or []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise WebhookMalformed(f"meta `value.{name}` is not a list of objects")
    return items


def _status(item: dict) -> StatusReport | None:
    message_id, raw = text_of(item.get("id")), text_of(item.get("status")).lower()
    if not message_id or not raw:
        raise WebhookMalformed("meta status without `id` and `status`")
    status = STATUSES.get(raw)
    if status is None:
        return None
    code, reason = _error(item) if status == FAILED else ("", "")
    return StatusReport(
        provider=PROVIDER,
        provider_message_id=message_id,
        status=status,
        event_key=f"{message_id}:{raw}",
        at=unix_time(item.get("timestamp")),
        error_code=code,
        error_message=reason,
        provider_status=raw,
    )


def _error(item: dict) -> tuple[str, str]:
    """errors[0] as (code, "message: details"): the title alone ("Message undeliverable") rarely says why.
    The details may quote the recipient, and become the message's last error and its callback: redacted."""
    errors = item.get("errors")
    error = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    reason = text_of(error.get("message") or error.get("title"))
    data = error.get("error_data")
    details = text_of(data.get("details")) if isinstance(data, dict) else ""
    if details and details not in reason:
        reason = f"{reason}: {details}" if reason else details
    return text_of(error.get("code")), redact(reason, text_of(item.get("recipient_id")))


def _incoming(item: dict, value: dict) -> IncomingMessage | None:
    message_id, kind = text_of(item.get("id")), text_of(item.get("type"))
    if not message_id:
        raise WebhookMalformed("meta message without `id`")
    reaction = object_of(item.get("reaction"))
    if kind in NOT_REPLIES or (kind == "reaction" and not reaction.get("emoji")):
        return None  # not the contact writing, or a reaction taken back
    from_phone = e164(item.get("from"))
    metadata = object_of(value.get("metadata"))
    media = object_of(item.get(kind)) if kind in MEDIA_KINDS else {}
    context = object_of(item.get("context"))
    return IncomingMessage(
        provider=PROVIDER,
        provider_message_id=message_id,
        from_phone=from_phone,
        to=text_of(metadata.get("phone_number_id")),
        event_key=f"in:{message_id}",
        text=_text(item) or text_of(media.get("caption")),
        media_url=text_of(media.get("id")),
        media_kind=kind if media else "",
        media_mimetype=text_of(media.get("mime_type")),
        in_reply_to=text_of(context.get("id") or reaction.get("message_id")),
        profile_name=_profile_name(value, from_phone),
        at=unix_time(item.get("timestamp")),
    )


def _text(item: dict) -> str:
    for field, inner in (("text", "body"), ("button", "text"), ("reaction", "emoji")):
        if isinstance(item.get(field), dict) and (text := text_of(item[field].get(inner))):
            return text
    interactive = item.get("interactive")
    if isinstance(interactive, dict):
        for reply in ("button_reply", "list_reply"):
            if isinstance(interactive.get(reply), dict) and (text := text_of(interactive[reply].get("title"))):
                return text
    return ""


def _profile_name(value: dict, from_phone: str) -> str:
    """The contact whose wa_id is the sender's, else the first (Meta sends one contact per message)."""
    contacts = [c for c in value.get("contacts") or [] if isinstance(c, dict)]
    match = next((c for c in contacts if e164(c.get("wa_id")) == from_phone), contacts[0] if contacts else {})
    profile = match.get("profile")
    return text_of(profile.get("name")) if isinstance(profile, dict) else ""
