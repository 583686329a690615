"""The rules a message's text and recipient must meet, shared by single sends and bulk rows.

Each failure is an InvalidInput carrying the contract's error text, a machine code and the field,
which the API turns into a 400 (single send) or a row error (bulk).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import datetime

from dispatcher.callback_urls import UnsafeUrl, check_written
from dispatcher.phones import InvalidPhoneNumber, to_e164
from dispatcher.settings import CallbackSettings
from dispatcher.templates import MissingVariable, Template


class InvalidInput(ValueError):
    def __init__(self, error: str, code: str, field: str):
        super().__init__(error)
        self.body = {"error": error, "code": code, "field": field}


def checked_callback_url(given: str | None, callbacks: CallbackSettings) -> str:
    """A message's callback URL: the caller's own, checked, else STATUS_WEBHOOK_URL (maybe empty: no callbacks)."""
    if not given:
        return callbacks.status_webhook_url
    if not callbacks.secret:
        raise InvalidInput(
            "callback_url needs WEBHOOK_SECRET to be set on the dispatcher: callbacks are always signed",
            "callbacks_not_configured",
            "callback_url",
        )
    _check_url(given, callbacks.allowlist, "callback_url", "callback_url")
    return given


def checked_media_url(url: str, allowlist: tuple[str, ...]) -> str:
    """A file's URL: the provider downloads it, Evolution from inside our network, so it must lead where a
    callback_url may (CALLBACK_URL_ALLOWLIST included). The 400 names `media`, as the schema's errors do."""
    _check_url(url, allowlist, "media.url", "media")
    return url


def _check_url(url: str, allowlist: tuple[str, ...], name: str, field: str) -> None:
    """Refuse a URL whose own text leads anywhere but to public (or allowed) addresses
    (dispatcher/callback_urls.py); `name` is what the error text calls it, `field` the request's field the
    400 names. A host name is not resolved here: a DNS server that stalls (anyone can run one) would hold a
    web thread per request. The workers resolve it, off the request path: before each callback delivery,
    and before a send with media (tasks/delivery.py)."""
    try:
        check_written(url, allowlist, name)
    except UnsafeUrl as unsafe:
        raise InvalidInput(str(unsafe), "invalid_field", field) from None


def checked_send_at(send_at: datetime | None, retention_days: int) -> float | None:
    """`send_at` as a timestamp, at most MESSAGE_RETENTION_DAYS ahead: a message is kept for as long as it
    waits, but one due months from now is far more likely a typo in the year than a plan."""
    if send_at is None:
        return None
    if send_at.timestamp() - time.time() > retention_days * 86400:
        raise InvalidInput(
            f"send_at must be at most {retention_days} days ahead (MESSAGE_RETENTION_DAYS)", "invalid_field", "send_at"
        )
    return send_at.timestamp()


def checked_expires_at(
    default_seconds: int | None,
    retention_days: int,
    valid_for: int | None = None,
    expires_at: datetime | None = None,
    send_at: float | None = None,
) -> float | None:
    """When a message still unsent becomes `expired`, as a timestamp (to the millisecond), or None: never.

    `expires_at` is that moment itself; `valid_for` (seconds), or MESSAGE_VALIDITY_SECONDS when the request gives
    neither, counts from when the message may go: its `send_at` (a timestamp, from `checked_send_at`), else now,
    so that a default validity never expires a scheduled message before its time. Either is bounded by
    MESSAGE_RETENTION_DAYS, as `send_at` is.
    """
    now = time.time()
    retention = retention_days * 86400
    if expires_at is not None:
        if valid_for is not None:
            raise InvalidInput("Give valid_for or expires_at, not both", "invalid_field", "expires_at")
        moment = expires_at.timestamp()
        if moment <= now:
            raise InvalidInput("expires_at must be in the future", "invalid_field", "expires_at")
        if send_at is not None and moment <= send_at:
            raise InvalidInput("expires_at must be after send_at", "invalid_field", "expires_at")
        if moment - now > retention:
            raise InvalidInput(
                f"expires_at must be at most {retention_days} days ahead (MESSAGE_RETENTION_DAYS)",
                "invalid_field",
                "expires_at",
            )
        return _to_millisecond(moment)
    seconds = valid_for if valid_for is not None else default_seconds
    if seconds is None:
        return None
    if seconds > retention:  # compared before any arithmetic: a huge integer must not overflow a float
        raise InvalidInput(
            f"valid_for must be at most {retention} seconds ({retention_days} days, MESSAGE_RETENTION_DAYS)",
            "invalid_field",
            "valid_for",
        )
    return _to_millisecond(max(send_at or now, now) + seconds)


def _to_millisecond(timestamp: float) -> float:
    """A timestamp to the millisecond, as every time of ours is shown (the scripts write it back as ISO)."""
    return math.floor(timestamp * 1000) / 1000


def checked_body(body: str, max_chars: int, optional: bool = False) -> str:
    """The message text; it may be empty only when `optional` (a file or a provider template carries the message)."""
    if optional and body == "":
        return body
    if not body.strip():
        raise InvalidInput("message_body must not be empty", "invalid_field", "message_body")
    if len(body) > max_chars:
        raise InvalidInput(f"message_body must be at most {max_chars} characters", "invalid_field", "message_body")
    return body


def checked_recipient(raw: str, region: str) -> str:
    """The recipient as E.164, or the reach-town contract's `Invalid phone number format`."""
    try:
        return to_e164(raw, region)
    except InvalidPhoneNumber:
        raise InvalidInput("Invalid phone number format", "invalid_phone", "recipient_phone") from None


def rendered(template: Template, variables: Mapping[str, object]) -> str:
    try:
        return template.render(variables)
    except MissingVariable as missing:
        raise InvalidInput(
            f"Missing template variable: {missing.name}", "missing_variable", f"variables.{missing.name}"
        ) from None
