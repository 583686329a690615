"""What the providers' webhooks tell us, in one shape for all three, and the two ways a webhook is refused.

Each provider has its own module (`evolution_inbound`, `twilio_inbound`, `meta_inbound`) with a `verify`
that proves the request came from the provider and a `parse` that turns its body into the events below,
and an `InboundAdapter` that calls both with one signature. They are pure: the web layer reads the
request into a `WebhookRequest`, calls the adapter, and maps the two errors to HTTP answers.
Events that are genuine but not for us (connection changes, intermediate statuses, our own echoed
messages) are left out of `parse`'s list rather than raised, so the provider gets a 2xx and stops retrying.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

SENT, DELIVERED, READ, FAILED = "sent", "delivered", "read", "failed"


@dataclass(frozen=True)
class StatusReport:
    """A provider says one of our sent messages changed status."""

    provider: str  # "evolution" | "twilio" | "meta"
    provider_message_id: str  # the id the provider gave the message when we sent it
    status: str  # ours: "sent" | "delivered" | "read" | "failed"
    event_key: str  # for dropping duplicates: the provider's event id, else f"{provider_message_id}:{raw status}"
    at: float | None = None  # the provider's own unix time of the event, when it gives one
    error_code: str = ""  # for "failed": the provider's code (Twilio ErrorCode, Meta errors[0].code, ...)
    error_message: str = ""  # for "failed": its reason/title/message
    provider_status: str = ""  # the provider's raw word (DELIVERY_ACK, undelivered, ...)


@dataclass(frozen=True)
class IncomingMessage:
    """A contact wrote to one of our numbers (a reply)."""

    provider: str
    provider_message_id: str
    from_phone: str  # E.164 with a leading +; "" when the provider hides the number (an Evolution @lid)
    to: str  # which of our senders got it: Evolution instance, Twilio "To" (E.164), Meta phone_number_id
    event_key: str  # f"in:{provider_message_id}"
    text: str = ""
    media_url: str = ""  # a URL (Evolution/Twilio) or, for Meta, the media id
    media_kind: str = ""  # image|document|video|audio|sticker
    media_mimetype: str = ""
    in_reply_to: str = ""  # provider message id of the message it answers, when the provider says
    profile_name: str = ""
    at: float | None = None


@dataclass(frozen=True)
class SenderState:
    """A provider says one of our senders connected or lost its connection (Evolution's connection.update)."""

    provider: str
    sender: str  # the Evolution instance
    connected: bool  # False: it cannot send (closed, refused); True: it is open again
    state: str  # the provider's word (open, close, refused, ...)
    reason: str = ""  # the provider's reason (Evolution's statusReason: 401 logged out, 428, 515, ...)


@dataclass(frozen=True)
class PreferenceChange:
    """A provider says a contact stopped (or resumed) marketing messages from one of our senders (Meta's
    user_preferences webhook): an opt-out (or opt-in) of the accounts whose contact it is."""

    provider: str
    to: str  # which of our senders: Meta's phone_number_id
    phone: str  # the contact, E.164
    opted_out: bool  # False: resumed
    at: float | None = None


InboundEvent = StatusReport | IncomingMessage | SenderState | PreferenceChange


class Headers(Protocol):
    """A request's headers, read by name whatever its case (werkzeug's Headers)."""

    def get(self, name: str, /) -> str | None: ...


@dataclass(frozen=True)
class WebhookRequest:
    """A provider's webhook request, as the web layer read it. `url` is the one the provider called (under
    PUBLIC_BASE_URL when it is set: behind a proxy the URL we see is not that one), query string included;
    `form` every name and value of a form post, in order."""

    url: str
    headers: Headers
    args: Mapping[str, str]
    form: list[tuple[str, str]]
    body: bytes


JSON, FORM = "json", "form"


class InboundAdapter:
    """One provider's webhook, served at POST /v1/webhooks/<provider>. Subclasses are dataclasses whose fields
    are the secrets that prove a request genuine (an empty one refuses every request), read from the variables
    that `SECRETS` names.

    What `/openapi.json` says of the route (the web layer makes it an operation): the class docstring (its
    first paragraph the summary, the rest the description), `BODY_DOC` for a JSON body, `ANSWERS` by status;
    for the handshake, `subscribe`'s docstring, the query parameters it reads and its answers.
    """

    provider: ClassVar[str]
    SECRETS: ClassVar[dict[str, str]]  # field → environment variable
    body: ClassVar[str] = JSON  # what `parse` is given: the JSON body, or the form (first value of each name)
    reply: ClassVar[tuple[str, str] | None] = None  # (body, content type); None: JSON counts of the outcomes
    handshake: ClassVar[bool] = False  # True: GET /v1/webhooks/<provider> answers `subscribe`
    BODY_DOC: ClassVar[str] = ""
    ANSWERS: ClassVar[dict[int, str]] = {}
    HANDSHAKE_QUERY: ClassVar[tuple[str, ...]] = ()
    HANDSHAKE_ANSWERS: ClassVar[dict[int, str]] = {}

    @property
    def receives(self) -> bool:
        """Whether every secret is set, so the provider's webhooks (the contacts' replies) can reach us."""
        return all(getattr(self, name) for name in self.SECRETS)

    def verify(self, request: WebhookRequest) -> None:
        """Return when the request is the provider's; else raise WebhookRejected."""
        raise NotImplementedError

    def parse(self, payload: Any) -> list[InboundEvent]:
        """The events in the body (see `body`); WebhookMalformed when it cannot be read."""
        raise NotImplementedError

    def subscribe(self, request: WebhookRequest) -> str:
        """The answer to the provider's GET handshake (when `handshake`); else raise WebhookRejected."""
        raise NotImplementedError


class WebhookRejected(Exception):
    """Not a genuine request from the provider: `status` 401 when no credential came with it, 403 when it was wrong."""

    def __init__(self, message: str, status: int = 403):
        super().__init__(message)
        self.message = message
        self.status = status


class WebhookMalformed(Exception):
    """A request we cannot read (bad JSON shape, missing fields): answered 400 with this message."""


def require_credential(configured: str, given: str | None, provider: str, setting: str) -> str:
    """Refuse before any comparison when we have nothing to compare with (403: a setup problem, said so
    plainly) or the request brought nothing (401). Returns `given`, now known to be a non-empty string."""
    if not configured:
        raise WebhookRejected(f"{provider} webhooks are not configured: set {setting}", 403)
    if not given:
        raise WebhookRejected(f"{provider} webhook without its credential", 401)
    return given


def same(expected: str, given: str) -> bool:
    """Constant-time equality of two strings of any characters (compare_digest refuses non-ASCII str)."""
    return hmac.compare_digest(expected.encode(), given.encode())


def e164(address: object) -> str:
    """'whatsapp:+55 11 99999-8888', '5511999998888@s.whatsapp.net', '5511999998888:12@s.whatsapp.net' (a
    device suffix) → '+5511999998888'; '' when there are no digits."""
    if not isinstance(address, str):
        return ""
    local = address.removeprefix("whatsapp:").split("@", 1)[0].split(":", 1)[0]
    digits = "".join(ch for ch in local if ch.isdigit())
    return f"+{digits}" if digits else ""


def unix_time(value: object) -> float | None:
    """The providers' clocks as unix seconds: numbers or digit strings (milliseconds when they are too big to
    be seconds), protobuf Longs ({"low","high"}) as Baileys may leave them, ISO-8601 strings (naive = UTC).
    Anything else is None: a missing time must never reject an event."""
    if isinstance(value, bool):
        return None
    if isinstance(value, dict) and isinstance(value.get("low"), int):
        value = (value.get("high") or 0) * 2**32 + (value["low"] & 0xFFFFFFFF)
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                return None
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, int | float) and value > 0:
        return value / 1000 if value > 1e11 else float(value)
    return None


def object_of(value: object) -> dict:
    """A field the providers document as an object: itself, or an empty one when it is null or anything else."""
    return value if isinstance(value, dict) else {}


def text_of(value: object) -> str:
    """A field the providers document as a string, defended against null and numbers."""
    if value is None or isinstance(value, dict | list | bool):
        return ""
    return str(value)
