"""The contract every WhatsApp provider fulfils, and the closed set of errors it may raise.

The task layer only knows this module: it hands an `OutboundMessage` to `Provider.send` and gets
back a `SendResult`, or one of the three errors below, which decide what happens next
(retry, fail this message, or fail loudly because the service is misconfigured).
Nothing here imports the rest of the service, so a provider can be tested on its own.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

from providers.redaction import redact

log = logging.getLogger(__name__)

# How much of a provider's error answer the debug log shows (the error's own text: providers/redaction.LIMIT).
DEBUG_ANSWER_CHARS = 2000

TEXT, MEDIA, TEMPLATE = "text", "media", "template"
MEDIA_KINDS = ("image", "document", "video", "audio")


@dataclass(frozen=True)
class Media:
    """A file sent by URL. `kind` is one of MEDIA_KINDS."""

    url: str
    kind: str
    caption: str = ""
    mimetype: str = ""
    filename: str = ""


@dataclass(frozen=True)
class Template:
    """A message template approved at the provider.

    Meta: `name`, `language` (pt_BR) and `components` as its API takes them.
    Twilio: `name` is the ContentSid (HX...), `variables` its ContentVariables.
    """

    name: str
    language: str = ""
    components: list = field(default_factory=list)
    variables: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundMessage:
    """What to send: `recipient` is E.164 (`+5564999998888`); `sender` is the provider's own name for
    the sending number (an Evolution instance, a Twilio From, a Meta phone-number id)."""

    message_id: str
    recipient: str
    text: str = ""
    external_id: str = ""
    sender: str = ""
    media: Media | None = None
    template: Template | None = None

    @property
    def kind(self) -> str:
        if self.template is not None:
            return TEMPLATE
        return MEDIA if self.media is not None else TEXT

    @property
    def private_texts(self) -> tuple[str, ...]:
        """What the recipient is told, which no error text may repeat: the text, a caption, a file name, the
        template's values (Twilio's variables, the parameters of Meta's components)."""
        texts = [self.text]
        if self.media is not None:
            texts += [self.media.caption, self.media.filename]
        if self.template is not None:
            texts += _values(self.template.variables) + _values(self.template.components)
        return tuple(text for text in texts if text)


# Keys of Meta's template components that name a part of the template, not a value the recipient sees.
_STRUCTURE_KEYS = frozenset({"type", "sub_type", "index"})


def _values(data: Any) -> list[str]:
    """Every value in a template's variables or components, as text (numbers too)."""
    if isinstance(data, dict):
        return [v for key, value in data.items() if key not in _STRUCTURE_KEYS for v in _values(value)]
    if isinstance(data, list):
        return [v for item in data for v in _values(item)]
    return [] if data is None or isinstance(data, bool) else [str(data)]


@dataclass(frozen=True)
class SendResult:
    """The provider accepted the message: its own id for it, the status it gave, and its raw answer."""

    provider_message_id: str
    provider_status: str = ""
    raw: Any = field(default_factory=dict)


class ProviderError(Exception):
    """Base of the provider errors: what the provider said, kept for the record and the logs.

    `provider` is its name (set by `Provider.send` if the raiser did not), `status` the HTTP status of its
    answer (None when no answer came: a timeout, a refused connection), `code` its own code (or
    `http_<status>`), `raw` its answer as it came. A transport failure keeps its cause (`raise ... from`).
    """

    def __init__(self, message: str, code: str = "", raw: Any = None, *, provider: str = "", status: int | None = None):
        super().__init__(message)
        self.code = code
        self.raw = raw
        self.provider = provider
        self.status = status


class TransientProviderError(ProviderError):
    """Worth trying again later: timeouts, 5xx, throttling. `retry_after` in seconds when the provider says.

    `throttled` means the provider says this sender goes too fast (HTTP 429, Meta 130429, Twilio 63018):
    every worker then holds the whole sender back, not just this message.
    """

    def __init__(
        self,
        message: str,
        code: str = "",
        raw: Any = None,
        retry_after: float | None = None,
        throttled: bool = False,
        **context: Any,
    ):
        super().__init__(message, code, raw, **context)
        self.retry_after = retry_after
        self.throttled = throttled


class PermanentProviderError(ProviderError):
    """This message can never be sent as it is (invalid number, opted out, outside the 24-hour window)."""


class ProviderConfigurationError(ProviderError):
    """The service is misconfigured (bad credentials, unknown instance): no message can be sent until fixed.

    `sender_down` means it is this sender that cannot send (its number blocked or locked, its instance gone),
    not the service: a pool then pauses that member and sends the message through another.
    """

    def __init__(self, message: str, code: str = "", raw: Any = None, sender_down: bool = False, **context: Any):
        super().__init__(message, code, raw, **context)
        self.sender_down = sender_down


class Provider:
    """A WhatsApp provider. Subclasses set `name` and `kinds`, and implement `transmit`.

    `senders` lists the sending numbers this service may use with it (the first is the default);
    an empty tuple means any sender is fine (the mock).
    """

    name = "base"
    kinds: frozenset[str] = frozenset({TEXT})
    senders: tuple[str, ...] = ()

    def send(self, message: OutboundMessage) -> SendResult:
        """Send `message` (through `transmit`), with the text of any error redacted.

        A provider's error may repeat the request, and its text is logged, stored as the message's last
        error and sent in the `message.failed` callback: here, where every send passes, the recipient's
        number and the message's texts are taken out of it (providers/redaction.py), so no provider and no
        caller can forget to. The answer itself is logged at debug only, without the number."""
        try:
            return self.transmit(message)
        except ProviderError as error:
            error.provider = error.provider or self.name
            if error.raw is not None and log.isEnabledFor(logging.DEBUG):
                answer = json.dumps(error.raw, ensure_ascii=False, default=str)
                context = {"message_id": message.message_id, "error_code": error.code}
                shown = redact(answer, message.recipient, limit=DEBUG_ANSWER_CHARS)
                log.debug("[%s_API_ERROR] %s", self.name.upper(), shown, extra=context)
            error.args = (redact(str(error), message.recipient, message.private_texts),)
            raise

    def transmit(self, message: OutboundMessage) -> SendResult:
        """The provider's own call: return its SendResult or raise one of the ProviderErrors above."""
        raise NotImplementedError

    @property
    def default_sender(self) -> str:
        return self.senders[0] if self.senders else ""


# The most of a number's digits its masked form shows, and the most of its last digits.
MASK_SHOWN_SHARE = 0.4
MASK_LAST_DIGITS = 4


def calling_code(digits: str) -> str:
    """The country calling code at the start of an international number's digits ('' if none): codes are
    prefix-free, so the first prefix that is a code is the number's."""
    for size in (1, 2, 3):
        if int(digits[:size] or 0) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return digits[:size]
    return ""


def mask_phone(phone: str) -> str:
    """A number for logs and answers: its country code and its last two to four digits, never more than
    MASK_SHOWN_SHARE of its digits (`+5564999998888` → `+55********888`). A short number shows its last
    digits only, or nothing; what is not `+` and digits is hidden whole."""
    plus = "+" if phone.startswith("+") else ""
    digits = phone[len(plus) :]
    if not (digits.isascii() and digits.isdigit()):
        return "*" * len(phone)
    shown = int(len(digits) * MASK_SHOWN_SHARE)
    code = calling_code(digits) if plus else ""
    if shown - len(code) < 2:  # no room for the code and two digits: the last digits alone
        code = ""
    last = min(MASK_LAST_DIGITS, shown - len(code))
    last = last if last >= 2 else 0
    return plus + code + "*" * (len(digits) - len(code) - last) + digits[len(digits) - last :]
