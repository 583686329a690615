"""Twilio Programmable Messaging, WhatsApp channel (REST API 2010-04-01).

One call sends every kind: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded,
HTTP Basic (Account SID and Auth Token, or an API key's SID and secret; the Account SID stays in
the URL either way). Only the `.json` suffix gets JSON back. The `whatsapp:` prefix on `To` and
`From` is what makes it WhatsApp: without it Twilio would send an SMS.

A sender is a WhatsApp number (`+14155238886`, sent as `From`) or a Messaging Service
(`MG...`, sent as `MessagingServiceSid`, which picks the number itself).

A 201 answer means queued, not delivered: many WhatsApp failures (63003, 63016, 63024...) also come
later as the `ErrorCode` of a status callback. Error answers look like
`{"code": 21211, "message": "...", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}`;
the Twilio code, not the HTTP status, says what went wrong, so it is looked up first.
"""

from __future__ import annotations

import json
from typing import Any

from providers.base import (
    MEDIA,
    TEMPLATE,
    TEXT,
    OutboundMessage,
    PermanentProviderError,
    ProviderConfigurationError,
    ProviderError,
    SendResult,
    TransientProviderError,
)
from providers.http import HttpProvider

# Twilio error codes whose meaning the HTTP status alone does not give (most come with a plain 400).
ERROR_CLASSES: dict[str, type[ProviderError]] = {
    "20429": TransientProviderError,  # too many requests: never processed, always safe to retry
    "63017": TransientProviderError,  # the account is over its messages per second
    "63018": TransientProviderError,  # the WhatsApp sender is over its rate limit
    "21211": PermanentProviderError,  # invalid To number
    "21610": PermanentProviderError,  # the recipient unsubscribed (replied STOP)
    "21614": PermanentProviderError,  # To is not a mobile / WhatsApp number
    "63003": PermanentProviderError,  # the channel could not find the To address
    "63016": PermanentProviderError,  # outside the 24-hour window: only a template may be sent
    "63024": PermanentProviderError,  # invalid message recipient
    "20403": PermanentProviderError,  # forbidden for this request (a credential Twilio refuses is 20003)
    "20003": ProviderConfigurationError,  # authentication failed
    "20404": ProviderConfigurationError,  # the account (or the URL) does not exist
    "21606": ProviderConfigurationError,  # From is not a valid WhatsApp sender of this account
    "63007": ProviderConfigurationError,  # no WhatsApp channel for the From address
    "21703": ProviderConfigurationError,  # the Messaging Service is unusable (inactive / no senders)
    "21704": ProviderConfigurationError,  # the Messaging Service has no phone numbers
}


class TwilioProvider(HttpProvider):
    name = "twilio"
    kinds = frozenset({TEXT, MEDIA, TEMPLATE})
    # Twilio's errors all read the same: its code names the cause.
    busy_text = credentials_text = refused_text = "Twilio error {code} (HTTP {status}): {detail}"
    no_id_text = "Twilio answered HTTP {status} without a message sid"

    def __init__(
        self,
        base_url: str,
        account_sid: str,
        auth: tuple[str, str],
        senders: tuple[str, ...],
        status_callback: str = "",
        **http,
    ):
        super().__init__(base_url, **http)
        self.path = f"/2010-04-01/Accounts/{account_sid}/Messages.json"
        self.senders = senders
        self.status_callback = status_callback
        self.session.auth = auth

    def form(self, message: OutboundMessage) -> dict[str, str]:
        """The form fields for `message`, as Twilio's Messages resource takes them."""
        form = {"To": f"whatsapp:{message.recipient}"}
        sender = message.sender or self.default_sender
        if sender.startswith("+"):
            form["From"] = f"whatsapp:{sender}"
        else:
            form["MessagingServiceSid"] = sender
        if message.template is not None:  # message.kind == TEMPLATE
            form["ContentSid"] = message.template.name
            if message.template.variables:
                form["ContentVariables"] = json.dumps(message.template.variables)
        elif message.media is not None:  # message.kind == MEDIA
            form["MediaUrl"] = message.media.url
            if body := message.media.caption or message.text:
                form["Body"] = body
        else:
            form["Body"] = message.text
        if self.status_callback:
            form["StatusCallback"] = self.status_callback
        return form

    def build_request(self, message: OutboundMessage) -> tuple[str, dict]:
        return self.path, {"data": self.form(message)}

    def accepted(self, status: int, answer: Any, message: OutboundMessage) -> SendResult | None:
        if status == 201 and isinstance(answer, dict) and answer.get("sid"):
            return SendResult(answer["sid"], str(answer.get("status", "")), answer)
        return None

    def error_code(self, status: int, answer: Any) -> str:
        fields = answer if isinstance(answer, dict) else {}
        return str(fields["code"]) if fields.get("code") is not None else f"http_{status}"

    def error_detail(self, answer: Any) -> str:
        """Twilio's message, which often quotes the `whatsapp:+...` To number: `send` redacts it; `raw` keeps
        the answer as it came."""
        fields = answer if isinstance(answer, dict) else {}
        return str(fields.get("message") or json.dumps(answer, ensure_ascii=False))

    def known_error(self, status: int, answer: Any, wait: float | None) -> ProviderError | None:
        """The Twilio code says what went wrong, whatever the HTTP status (most come with a plain 400)."""
        code = self.error_code(status, answer)
        error_class = ERROR_CLASSES.get(code)
        if error_class is None:
            return None
        text = self.error_text(self.refused_text, status, answer)
        if error_class is TransientProviderError:
            return TransientProviderError(text, code, answer, wait, throttled=True)  # each one is a rate limit
        return error_class(text, code, answer)
