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

from providers.base import (
    MEDIA,
    TEMPLATE,
    TEXT,
    OutboundMessage,
    PermanentProviderError,
    ProviderConfigurationError,
    SendResult,
    TransientProviderError,
)
from providers.http import HttpProvider, retry_after

log = logging.getLogger(__name__)


class WebhookProvider(HttpProvider):
    name = "webhook"
    kinds = frozenset({TEXT, MEDIA, TEMPLATE})

    def __init__(self, url: str, secret: str, secret_header: str = "X-Dispatcher-Secret", **http):
        super().__init__(url, **http)
        self.session.headers[secret_header] = secret

    @staticmethod
    def payload(message: OutboundMessage) -> dict:
        body = {
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

    def transmit(self, message: OutboundMessage) -> SendResult:
        response = self.request("POST", "", json=self.payload(message))
        if 200 <= response.status_code < 300:
            # A 2xx is the bridge taking the message, whatever its body says: a body we cannot read must not
            # turn into a retry (the message would go out twice), so it is sent, under our own id.
            try:
                answer = (
                    response.json() if response.content and "json" in response.headers.get("Content-Type", "") else {}
                )
            except ValueError:
                log.warning(
                    "webhook bridge answered %s with a body that is not JSON: taken as accepted",
                    response.status_code,
                    extra={"message_id": message.message_id},
                )
                answer = {}
            answer = answer if isinstance(answer, dict) else {}
            found = answer.get("id") or answer.get("message_id") or answer.get("messageId")
            return SendResult(str(found or message.message_id), str(answer.get("status", "accepted")), answer)
        answer = self.json_or_transient(response)
        text = f"webhook answered HTTP {response.status_code}: {answer}"
        code = f"http_{response.status_code}"
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientProviderError(
                text, code, answer, retry_after(response), throttled=response.status_code == 429
            )
        if response.status_code in (401, 403):
            raise ProviderConfigurationError(text, code, answer)
        raise PermanentProviderError(text, code, answer)
