"""A provider that sends nothing: for development, demos and load tests.

It behaves like a real one where it matters to the rest of the service: it takes time
(`MOCK_LATENCY_MS`), fails now and then with a transient error (`MOCK_FAILURE_RATE`), and answers
with an id of its own. It logs a `[MOCK]` line per message, as the legacy system did, with the
phone masked and the text only at debug level.
"""

from __future__ import annotations

import logging
import random
import time

from providers.base import (
    MEDIA,
    TEMPLATE,
    TEXT,
    OutboundMessage,
    Provider,
    SendResult,
    TransientProviderError,
    mask_phone,
)

log = logging.getLogger(__name__)


class MockProvider(Provider):
    name = "mock"
    kinds = frozenset({TEXT, MEDIA, TEMPLATE})

    def __init__(self, latency_ms: int = 100, failure_rate: float = 0.0):
        self.latency_seconds = latency_ms / 1000
        self.failure_rate = failure_rate

    def transmit(self, message: OutboundMessage) -> SendResult:
        log.info("[MOCK] Enviando para %s", mask_phone(message.recipient), extra={"message_id": message.message_id})
        log.debug("[MOCK] Texto: %r", message.text, extra={"message_id": message.message_id})
        if self.latency_seconds:
            time.sleep(self.latency_seconds)
        if self.failure_rate and random.random() < self.failure_rate:
            raise TransientProviderError("mock provider failed on purpose (MOCK_FAILURE_RATE)", code="mock_failure")
        # A random suffix, not uuid4: the mock needs no unpredictable ids, and os.urandom per send shows in a drain.
        mock_id = f"mock-{int(time.time() * 1000)}-{random.getrandbits(32):08x}"
        return SendResult(mock_id, "accepted", {"mock_id": mock_id, "provider": self.name})
