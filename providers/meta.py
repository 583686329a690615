"""Meta WhatsApp Cloud API (graph.facebook.com): the official WhatsApp Business Platform.

Sends with `POST /{version}/{phone-number-id}/messages`, JSON, `Authorization: Bearer <token>`. The
phone-number id is the sender. A 200 means accepted, not delivered: delivery comes later on the
status webhook. Outside the 24-hour window since the user's last reply only a template gets through.

Errors look like `{"error": {"message", "type", "code", "error_data": {"details"}, "fbtrace_id"}}`.
They are sorted on `error.code`, not the HTTP status, because Meta answers 400 for causes that need
opposite handling (a throughput limit, an unknown number, an expired token).
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

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
from providers.http import HttpProvider, path_segment

# Throughput reached, app/account call limits, Meta's own failures: another attempt later may pass.
TRANSIENT_CODES = frozenset({130429, 4, 80007, 131000, 131016, 2})
# Of those, the ones saying this number (or app, or account) sends too fast: hold the whole sender back.
THROTTLE_CODES = frozenset({130429, 4, 80007})
# Too many messages to one user in a short time: only that recipient has to wait.
PAIR_RATE_LIMIT = 131056
# About the recipient (undeliverable, outside the 24-hour window, opted out, spam limit): never for this message.
PERMANENT_CODES = frozenset({131026, 131047, 131050, 131049, 131048, 131051, 131052, 131053})
# Token, account, payment, permissions or a request we build wrongly: no message passes until someone fixes it.
CONFIGURATION_CODES = frozenset({190, 368, 131031, 131042, 100, 131008, 131009, 10, 200, 3, 133010})
# Of those, the ones about the sending number itself: blocked for policy (368), account locked (131031), the
# number not registered on the Cloud API (133010).
SENDER_DOWN_CODES = frozenset({368, 131031, 133010})
# Every 132xxx is about the template (missing, not approved, wrong parameters): fixed at Meta, not by retrying.
TEMPLATE_CODES = range(132000, 133000)


class MetaProvider(HttpProvider):
    name = "meta"
    label = "Meta"
    kinds = frozenset({TEXT, MEDIA, TEMPLATE})
    busy_text = "Meta is busy or failing (HTTP {status}): {detail}"

    def __init__(self, base_url: str, api_version: str, access_token: str, phone_number_ids: tuple[str, ...], **http):
        super().__init__(base_url, **http)
        self.api_version = api_version
        self.senders = phone_number_ids
        self.session.headers["Authorization"] = f"Bearer {access_token}"

    def payload(self, message: OutboundMessage) -> dict:
        """The body for `message`, as the Cloud API takes it."""
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.recipient,
        }
        if message.template is not None:
            template = message.template
            fields: dict[str, Any] = {
                "name": template.name,
                # v23.0's spec requires the policy; "deterministic" is the only value it has.
                "language": {"code": template.language or "pt_BR", "policy": "deterministic"},
            }
            if template.components:
                fields["components"] = template.components
            return {**body, "type": "template", "template": fields}
        if message.media is None:
            return {**body, "type": "text", "text": {"body": message.text, "preview_url": False}}
        media = message.media
        fields = {"link": media.url}
        caption = media.caption or message.text
        if caption and media.kind != "audio":  # Meta refuses a caption on audio
            fields["caption"] = caption
        if media.kind == "document":
            # Without a file name the recipient sees an untitled document.
            filename = media.filename or PurePosixPath(urlsplit(media.url).path).name
            if filename:
                fields["filename"] = filename
        return {**body, "type": media.kind, media.kind: fields}

    def build_request(self, message: OutboundMessage) -> tuple[str, dict]:
        phone_number_id = message.sender or self.default_sender
        return f"/{self.api_version}/{path_segment(phone_number_id)}/messages", {"json": self.payload(message)}

    def accepted(self, status: int, answer: Any, message: OutboundMessage) -> SendResult | None:
        if status == 200 and (sent := _first_message(answer)) is not None:
            return SendResult(sent["id"], str(sent.get("message_status", "accepted")), answer)
        return None

    def error_code(self, status: int, answer: Any) -> str:
        number = _error_number(answer)
        return str(number) if number is not None else f"http_{status}"

    def error_detail(self, answer: Any) -> str:
        """`error.message` and `error_data.details` (which may quote the recipient and the text: `send`
        redacts them), else the whole answer."""
        error = _error(answer)
        data = error.get("error_data")
        details = data.get("details") if isinstance(data, dict) else None
        text = " - ".join(str(part) for part in (error.get("message"), details) if part)
        return text or json.dumps(answer, ensure_ascii=False)

    def known_error(self, status: int, answer: Any, wait: float | None) -> ProviderError | None:
        """Sorted by `error.code`: Meta answers 400 for causes that need opposite handling."""
        number = _error_number(answer)
        code = self.error_code(status, answer)
        if number == PAIR_RATE_LIMIT:
            text = (
                "Meta: too many messages to this recipient in a short time; only this recipient must wait, "
                "others can be sent now: {detail}"
            )
            return TransientProviderError(self.error_text(text, status, answer), code, answer, wait)
        if number in TRANSIENT_CODES:
            text = self.error_text("Meta is throttling or failing (#{code}): {detail}", status, answer)
            return TransientProviderError(text, code, answer, wait, throttled=number in THROTTLE_CODES)
        if number in PERMANENT_CODES:
            text = self.error_text("Meta cannot deliver this message (#{code}): {detail}", status, answer)
            return PermanentProviderError(text, code, answer)
        if number in TEMPLATE_CODES:
            text = self.error_text("Meta refused the template (#{code}): {detail}", status, answer)
            return ProviderConfigurationError(text, code, answer)
        if number in CONFIGURATION_CODES:
            text = self.error_text("Meta refused the token, account or request (#{code}): {detail}", status, answer)
            return ProviderConfigurationError(text, code, answer, sender_down=number in SENDER_DOWN_CODES)
        return None


def _error(answer: Any) -> dict:
    """The answer's `error` object ({} when there is none)."""
    error = answer.get("error") if isinstance(answer, dict) else None
    return error if isinstance(error, dict) else {}


def _error_number(answer: Any) -> int | None:
    code = _error(answer).get("code")
    return code if isinstance(code, int) else None


def _first_message(answer: Any) -> dict | None:
    """The answer's `messages[0]` when it carries the message id, else None."""
    messages = answer.get("messages") if isinstance(answer, dict) else None
    first = messages[0] if isinstance(messages, list) and messages else None
    return first if isinstance(first, dict) and first.get("id") else None
