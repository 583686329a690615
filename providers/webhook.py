"""A generic provider for bridges (n8n, Make, a gateway of your own): each message is POSTed as JSON to
a configured URL with a shared secret in a header, as reach-town's own dispatcher did with n8n.

The bridge answers 2xx when it took the message, with its own id in `id`, `message_id` or
`messageId` if it has one (a 2xx whose body cannot be read still means taken: never a retry);
401/403 mean our secret is wrong (configuration), 429 and 5xx are worth another try, any other 4xx
refuses this message.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import requests

from providers.base import MEDIA, TEMPLATE, TEXT, OutboundMessage, SendResult
from providers.http import HttpProvider

log = logging.getLogger(__name__)


class WebhookProvider(HttpProvider):
    name = "webhook"
    kinds = frozenset({TEXT, MEDIA, TEMPLATE})
    # The bridge's errors all read the same; the HTTP status decides (the base fallback).
    busy_text = credentials_text = refused_text = no_id_text = "webhook answered HTTP {status}: {detail}"

    def __init__(self, url: str, secret: str, secret_header: str = "X-Dispatcher-Secret", **http):
        super().__init__(url, **http)
        self.session.headers[secret_header] = secret

    @staticmethod
    def payload(message: OutboundMessage) -> dict:
        body: dict[str, Any] = {
            "phone": message.recipient,
            "message": message.text,
            "external_id": message.external_id,
            "message_id": message.message_id,
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        if message.sender:
            body["sender"] = message.sender
        if message.media:
            body["media"] = asdict(message.media)
        if message.template:
            body["template"] = asdict(message.template)
        return body

    def build_request(self, message: OutboundMessage) -> tuple[str, dict]:
        return "", {"json": self.payload(message)}

    def read_answer(self, response: requests.Response, message: OutboundMessage) -> Any:
        """A 2xx is the bridge taking the message, whatever its body says: a body we cannot read must not
        turn into a retry (the message would go out twice), so it reads as {} and the message is sent."""
        if not 200 <= response.status_code < 300:
            return self.json_or_transient(response)
        try:
            answer = response.json() if response.content and "json" in response.headers.get("Content-Type", "") else {}
        except ValueError:
            log.warning(
                "webhook bridge answered %s with a body that is not JSON: taken as accepted",
                response.status_code,
                extra={"message_id": message.message_id},
            )
            answer = {}
        return answer if isinstance(answer, dict) else {}

    def accepted(self, status: int, answer: Any, message: OutboundMessage) -> SendResult | None:
        if not 200 <= status < 300:
            return None
        found = answer.get("id") or answer.get("message_id") or answer.get("messageId")
        return SendResult(str(found or message.message_id), str(answer.get("status", "accepted")), answer)

    def error_detail(self, answer: Any) -> str:
        return str(answer)
