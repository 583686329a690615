"""Twilio webhooks: StatusCallback posts (our messages' statuses) and incoming-message posts (replies).

Both are form posts signed with `X-Twilio-Signature`: base64(HMAC-SHA1(key=the account's Auth Token,
msg=the full URL + every POST parameter as name+value, sorted)). The key is the Auth Token even when we
send with an API key, so webhooks need TWILIO_AUTH_TOKEN in any case. Twilio adds parameters without
notice, so the signature is computed over whatever came, never over a list of known names.
Twilio sends no event time in either post, and no event id among the parameters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit

from providers.inbound import (
    DELIVERED,
    FAILED,
    FORM,
    READ,
    SENT,
    InboundAdapter,
    InboundEvent,
    IncomingMessage,
    StatusReport,
    WebhookMalformed,
    WebhookRejected,
    WebhookRequest,
    e164,
    require_credential,
    same,
)
from providers.redaction import redact

PROVIDER = "twilio"
STATUSES = {
    "sent": SENT,
    "delivered": DELIVERED,
    "read": READ,
    "failed": FAILED,
    "undelivered": FAILED,
    "canceled": FAILED,  # a scheduled message called off: it will never go
}
# queued, sending, accepted, scheduled, receiving (and whatever Twilio adds) are steps before an outcome.
DEFAULT_PORTS = {"https": 443, "http": 80}


EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@dataclass(frozen=True)
class TwilioWebhook(InboundAdapter):
    """Twilio webhook: StatusCallback posts and incoming WhatsApp messages.

    Messages we send carry `StatusCallback=PUBLIC_BASE_URL/v1/webhooks/twilio`; point the sender's
    "A message comes in" webhook at the same URL for replies. Verified with `X-Twilio-Signature`
    (HMAC-SHA1 of the URL and the form, keyed by TWILIO_AUTH_TOKEN).
    """

    ANSWERS: ClassVar[dict[int, str]] = {
        200: "Verified and applied; an empty TwiML answer",
        400: "Not a Twilio message post",
        401: "No signature",
        403: "Wrong signature, or TWILIO_AUTH_TOKEN not set",
    }

    provider: ClassVar[str] = PROVIDER
    SECRETS: ClassVar[dict[str, str]] = {"auth_token": "TWILIO_AUTH_TOKEN"}
    body: ClassVar[str] = FORM
    reply: ClassVar[tuple[str, str] | None] = (EMPTY_TWIML, "text/xml")
    auth_token: str = ""

    def verify(self, request: WebhookRequest) -> None:
        verify(self.auth_token, request.url, request.form, request.headers.get("X-Twilio-Signature"))

    def parse(self, payload: Mapping[str, str]) -> list[InboundEvent]:
        return parse(payload)


def signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """What Twilio puts in X-Twilio-Signature for a POST of `params` to `url`. Repeated names keep every
    value, sorted by name then value, as twilio-python's RequestValidator does."""
    message = url + "".join(name + value for name, value in sorted(_pairs(params)))
    digest = hmac.new(auth_token.encode(), message.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify(auth_token: str, url: str, params, given: str | None) -> None:
    """Accept the request only when `given` signs `params` posted to `url`, with or without its default port
    (Twilio is inconsistent about it, and a proxy may add or drop it). `url` is the full public URL Twilio
    called, query string included; `params` pairs (pass a werkzeug MultiDict's `.items(multi=True)`, or the
    MultiDict itself)."""
    given = require_credential(auth_token, given, PROVIDER, "TWILIO_AUTH_TOKEN")
    pairs = list(_pairs(params))
    matches = [same(signature(auth_token, candidate, pairs), given) for candidate in _url_variants(url)]
    if not any(matches):
        raise WebhookRejected("twilio signature does not match this URL and these parameters", 403)


def parse(params: Mapping[str, str]) -> list[InboundEvent]:
    """The status or the reply in one Twilio post; intermediate statuses give an empty list."""
    if not isinstance(params, Mapping):
        raise WebhookMalformed("twilio webhook is not a form post")
    sid = params.get("MessageSid") or params.get("SmsSid")
    if not sid:
        raise WebhookMalformed("twilio webhook without MessageSid or SmsSid")
    raw = (params.get("MessageStatus") or params.get("SmsStatus") or params.get("EventType") or "").strip().lower()
    if not raw:
        raise WebhookMalformed("twilio webhook without MessageStatus or SmsStatus")
    if raw == "received":
        return [_incoming(sid, params)]
    status = STATUSES.get(raw)
    if status is None:
        return []
    failed = status == FAILED
    return [
        StatusReport(
            provider=PROVIDER,
            provider_message_id=sid,
            status=status,
            event_key=f"{sid}:{raw}",
            error_code=(params.get("ErrorCode") or "") if failed else "",
            error_message=_error_message(params) if failed else "",
            provider_status=raw,
        )
    ]


def _error_message(params: Mapping[str, str]) -> str:
    """Why Twilio says a message failed; it may quote the To, and becomes the message's last error: redacted."""
    text = params.get("ErrorMessage") or params.get("ChannelStatusMessage") or ""
    return redact(text, e164(params.get("To")))


def _incoming(sid: str, params: Mapping[str, str]) -> IncomingMessage:
    from_phone = e164(params.get("From"))
    if not from_phone:
        raise WebhookMalformed("twilio incoming message without From")
    has_media = (params.get("NumMedia") or "0").strip() not in ("", "0")
    mimetype = (params.get("MediaContentType0") or "") if has_media else ""
    return IncomingMessage(
        provider=PROVIDER,
        provider_message_id=sid,
        from_phone=from_phone,
        to=e164(params.get("To")),
        event_key=f"in:{sid}",
        text=params.get("Body") or params.get("ButtonText") or "",
        media_url=(params.get("MediaUrl0") or "") if has_media else "",
        media_kind=_kind(mimetype),
        media_mimetype=mimetype,
        in_reply_to=params.get("OriginalRepliedMessageSid") or "",
        profile_name=params.get("ProfileName") or "",
    )


def _kind(mimetype: str) -> str:
    if not mimetype:
        return ""
    major = mimetype.split("/", 1)[0].lower()
    return major if major in ("image", "video", "audio") else "document"


def _pairs(params) -> Iterable[tuple[str, str]]:
    """(name, value) pairs from pairs, a plain mapping, or a multi-valued mapping (every value kept)."""
    if isinstance(params, Mapping):
        try:
            return list(params.items(multi=True))  # type: ignore[call-arg]  # werkzeug's MultiDict: .items() would drop repeats
        except TypeError:
            return list(params.items())
    return list(params)


def _url_variants(url: str) -> list[str]:
    """`url` as given, plus the same URL with its scheme's default port removed or added. Only the host part
    is rewritten, in the string itself: re-assembling a parsed URL could alter the rest (a bare '?')."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return [url]
    default = DEFAULT_PORTS.get(parts.scheme.lower())
    start = url.find("//") + 2
    if default is None or not parts.hostname or url[start : start + len(parts.netloc)] != parts.netloc:
        return [url]
    if port is None:
        netloc = f"{parts.netloc}:{default}"
    elif port == default:
        netloc = parts.netloc.rsplit(":", 1)[0]
    else:
        return [url]
    return [url, url[:start] + netloc + url[start + len(parts.netloc) :]]
