"""The contract every WhatsApp provider fulfils, and the closed set of errors it may raise.

The task layer only knows this module: it hands an `OutboundMessage` to `Provider.send` and gets
back a `SendResult`, or one of the three errors below, which decide what happens next
(retry, fail this message, or fail loudly because the service is misconfigured).
Nothing here imports the rest of the service, so a provider can be tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class OutboundMessage:
    """What to send: `recipient` is E.164 (`+5564999998888`)."""

    message_id: str
    recipient: str
    text: str
    external_id: str = ""


@dataclass(frozen=True)
class SendResult:
    """The provider accepted the message: its own id for it, and its raw answer for the record."""

    provider_message_id: str
    raw: dict[str, Any] = field(default_factory=dict)


class ProviderError(Exception):
    """Base of the provider errors; `code` is the provider's own code, kept for the record."""

    def __init__(self, message: str, code: str = "", raw: Any = None):
        super().__init__(message)
        self.code = code
        self.raw = raw


class TransientProviderError(ProviderError):
    """Worth trying again later: timeouts, 5xx, throttling. `retry_after` in seconds when the provider says."""

    def __init__(self, message: str, code: str = "", raw: Any = None, retry_after: float | None = None):
        super().__init__(message, code, raw)
        self.retry_after = retry_after


class PermanentProviderError(ProviderError):
    """This message can never be sent as it is (invalid number, opted out, outside the 24-hour window)."""


class ProviderConfigurationError(ProviderError):
    """The service is misconfigured (bad credentials, unknown instance): no message can be sent until fixed."""


class Provider:
    """A WhatsApp provider. Subclasses set `name` and implement `send`."""

    name = "base"

    def send(self, message: OutboundMessage) -> SendResult:
        raise NotImplementedError


def mask_phone(phone: str) -> str:
    """Hide the middle of a phone number for logs: `+5564999998888` → `+5564*****8888`."""
    if len(phone) <= 8:
        return "*" * len(phone)
    return phone[:5] + "*" * (len(phone) - 9) + phone[-4:]
