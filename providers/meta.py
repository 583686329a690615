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
import logging
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
    SendResult,
    TransientProviderError,
    mask_phone,
)
from providers.http import HttpProvider, path_segment, retry_after

log = logging.getLogger(__name__)

# Throughput reached, app/account call limits, Meta's own failures: another attempt later may pass.
TRANSIENT_CODES = frozenset({130429, 4, 80007, 131000, 131016, 2})
# Of those, the ones saying this number (or app, or account) sends too fast: hold the whole sender back.
THROTTLE_CODES = frozenset({130429, 4, 80007})
# Too many messages to one user in a short time: only that recipient has to wait.
PAIR_RATE_LIMIT = 131056
# About the recipient (undeliverable, outside the 24-hour window, opted out, spam limit): never for this message.
PERMANENT_CODES = frozenset({131026, 131047, 131050, 131049, 131048, 131051, 131052, 131053})
# Token, account, payment, permissions or a request we build wrongly: no message passes until someone fixes it.
CONFIGURATION_CODES = frozenset({190, 368, 131031, 131042, 100, 131008, 131009, 10, 200, 3})
# Every 132xxx is about the template (missing, not approved, wrong parameters): fixed at Meta, not by retrying.
TEMPLATE_CODES = range(132000, 133000)


class MetaProvider(HttpProvider):
    name = "meta"
    kinds = frozenset({TEXT, MEDIA, TEMPLATE})

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

    def transmit(self, message: OutboundMessage) -> SendResult:
        body = self.payload(message)
        phone_number_id = message.sender or self.default_sender
        log.debug(
            "[META_API_REQUEST] %s %s",
            phone_number_id,
            json.dumps({**body, "to": mask_phone(message.recipient)}, ensure_ascii=False),
            extra={"message_id": message.message_id},
        )
        response = self.request("POST", f"/{self.api_version}/{path_segment(phone_number_id)}/messages", json=body)
        answer = self.json_or_transient(response)
        if response.status_code == 200 and (sent := _first_message(answer)) is not None:
            return SendResult(sent["id"], str(sent.get("message_status", "accepted")), answer)
        # `error_data.details` may quote the recipient and the text: `send` redacts them.
        raise self.error(response.status_code, answer, retry_after(response))

    def error(self, status: int, answer: Any, wait: float | None) -> Exception:
        """Sort a Graph API error answer into the taxonomy: by `error.code`, else by the HTTP status."""
        error = answer.get("error") if isinstance(answer, dict) else None
        error = error if isinstance(error, dict) else {}
        data = error.get("error_data")
        details = data.get("details") if isinstance(data, dict) else None
        text = " - ".join(str(part) for part in (error.get("message"), details) if part)
        text = text or json.dumps(answer, ensure_ascii=False)
        number = error.get("code") if isinstance(error.get("code"), int) else None
        code = str(number) if number is not None else f"http_{status}"
        if number == PAIR_RATE_LIMIT:
            return TransientProviderError(
                f"Meta: too many messages to this recipient in a short time; only this recipient must wait, "
                f"others can be sent now: {text}",
                code,
                answer,
                wait,
            )
        if number in TRANSIENT_CODES:
            return TransientProviderError(
                f"Meta is throttling or failing (#{number}): {text}",
                code,
                answer,
                wait,
                throttled=number in THROTTLE_CODES,
            )
        if number in PERMANENT_CODES:
            return PermanentProviderError(f"Meta cannot deliver this message (#{number}): {text}", code, answer)
        if number in TEMPLATE_CODES:
            return ProviderConfigurationError(f"Meta refused the template (#{number}): {text}", code, answer)
        if number in CONFIGURATION_CODES:
            return ProviderConfigurationError(
                f"Meta refused the token, account or request (#{number}): {text}", code, answer
            )
        if status == 429 or status >= 500:
            return TransientProviderError(
                f"Meta is busy or failing (HTTP {status}): {text}", code, answer, wait, throttled=status == 429
            )
        if status >= 400:
            return PermanentProviderError(f"Meta refused the message (HTTP {status}): {text}", code, answer)
        return TransientProviderError(f"Meta answered without a message id: {text}", "no_message_id", answer)


def _first_message(answer: Any) -> dict | None:
    """The answer's `messages[0]` when it carries the message id, else None."""
    messages = answer.get("messages") if isinstance(answer, dict) else None
    first = messages[0] if isinstance(messages, list) and messages else None
    return first if isinstance(first, dict) and first.get("id") else None
