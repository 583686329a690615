"""Evolution API v2 (a WhatsApp gateway built on Baileys; also reaches WhatsApp Business).

Sends with `POST /message/sendText/{instance}` and `POST /message/sendMedia/{instance}`, the
`apikey` header, and `delay`: milliseconds of "typing..." shown before the message (the call
blocks that long). The instance is the sender. Error bodies look like
`{"status": 400, "error": "Bad Request", "response": {"message": [...]}}`.
"""

from __future__ import annotations

import json
import logging
import mimetypes
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from providers.base import (
    MEDIA,
    TEXT,
    OutboundMessage,
    PermanentProviderError,
    ProviderConfigurationError,
    ProviderError,
    SendResult,
)
from providers.http import HttpProvider, path_segment

log = logging.getLogger(__name__)


class EvolutionProvider(HttpProvider):
    name = "evolution"
    label = "Evolution API"
    kinds = frozenset({TEXT, MEDIA})
    credentials_text = "{label} refused the API key (HTTP {status}): {detail}"

    def __init__(self, base_url: str, api_key: str, instances: tuple[str, ...], typing_delay_ms: int = 0, **http):
        super().__init__(base_url, **http)
        self.senders = instances
        self.typing_delay_ms = typing_delay_ms
        self.session.headers["apikey"] = api_key

    def payload(self, message: OutboundMessage) -> tuple[str, dict]:
        """The endpoint and body for `message`, as Evolution API v2 takes them."""
        body: dict[str, Any] = {"number": message.recipient.lstrip("+")}
        if self.typing_delay_ms:
            body["delay"] = self.typing_delay_ms
        if message.media is None:
            return "sendText", {**body, "text": message.text}
        media = message.media
        filename = media.filename or PurePosixPath(urlsplit(media.url).path).name or media.kind
        body.update(
            mediatype=media.kind,
            media=media.url,
            # The docs' spec requires all three; the server accepts them empty.
            caption=media.caption or message.text,
            mimetype=media.mimetype or mimetypes.guess_type(filename)[0] or "application/octet-stream",
            fileName=filename,
        )
        return "sendMedia", body

    def build_request(self, message: OutboundMessage) -> tuple[str, dict]:
        endpoint, body = self.payload(message)
        instance = message.sender or self.default_sender
        return f"/message/{endpoint}/{path_segment(instance)}", {"json": body}

    def accepted(self, status: int, answer: Any, message: OutboundMessage) -> SendResult | None:
        if status in (200, 201) and isinstance(answer, dict) and answer.get("key", {}).get("id"):
            return SendResult(answer["key"]["id"], str(answer.get("status", "")), answer)
        return None

    def error_detail(self, answer: Any) -> str:
        """Evolution's `response.message` (a list of what went wrong), else the whole answer."""
        details = answer.get("response", {}).get("message") if isinstance(answer, dict) else None
        return json.dumps(details if details is not None else answer, ensure_ascii=False)

    def known_error(self, status: int, answer: Any, wait: float | None) -> ProviderError | None:
        """An unknown instance (404), and a number that is not on WhatsApp (`exists: false`)."""
        details = answer.get("response", {}).get("message") if isinstance(answer, dict) else None
        if status == 404:
            return ProviderConfigurationError(
                self.error_text("{label} instance not found: {detail}", status, answer),
                f"http_{status}",
                answer,
                sender_down=True,
            )
        if isinstance(details, list) and any(isinstance(d, dict) and d.get("exists") is False for d in details):
            return PermanentProviderError("the number is not on WhatsApp", "not_on_whatsapp", answer)
        return None


class EvolutionInstances:
    """Evolution API's instance management (the legacy API's /instances routes): thin calls that hand back
    Evolution's own status and answer, so the API can relay them. Transport failures raise
    TransientProviderError, as for sends."""

    INTEGRATIONS = ("WHATSAPP-BAILEYS", "WHATSAPP-BUSINESS", "EVOLUTION")

    def __init__(self, provider: EvolutionProvider):
        self.provider = provider

    def _call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        response = self.provider.request(method, path, **kwargs)
        answer = self.provider.json_or_transient(response)
        if response.status_code >= 400:
            log.error(
                "[EVOLUTION_API_ERROR] HTTP %s from %s %s: %s",
                response.status_code,
                method,
                path,
                json.dumps(answer, ensure_ascii=False)[:1000],
            )
        return response.status_code, answer

    def list(self) -> tuple[int, Any]:
        return self._call("GET", "/instance/fetchInstances")

    def create(self, name: str, integration: str, token: str = "", qrcode: bool = True, number: str = ""):
        """Evolution v2 requires `integration` (the legacy API never sent it, so creation failed against v2)."""
        body: dict[str, Any] = {"instanceName": name, "integration": integration}
        if integration == "WHATSAPP-BAILEYS":
            body["qrcode"] = qrcode
        if token:
            body["token"] = token
        if number:
            body["number"] = number
        return self._call("POST", "/instance/create", json=body)

    def connect(self, name: str, number: str = "") -> tuple[int, Any]:
        """A QR code (base64 PNG) to scan, and a pairing code when `number` is given."""
        return self._call(
            "GET", f"/instance/connect/{path_segment(name)}", params={"number": number} if number else None
        )

    def state(self, name: str) -> tuple[int, Any]:
        return self._call("GET", f"/instance/connectionState/{path_segment(name)}")

    def logout(self, name: str) -> tuple[int, Any]:
        return self._call("DELETE", f"/instance/logout/{path_segment(name)}")

    def delete(self, name: str) -> tuple[int, Any]:
        return self._call("DELETE", f"/instance/delete/{path_segment(name)}")
