"""What a worker process shares between its tasks: settings, the message store, the provider.

Built once per process on first use (after a prefork child is forked), so connection pools
are never shared across processes.
"""

from __future__ import annotations

import functools

from dispatcher.settings import Settings, load_settings
from dispatcher.store import MessageStore, connect
from providers import MockProvider, Provider


@functools.cache
def settings() -> Settings:
    return load_settings()


@functools.cache
def store() -> MessageStore:
    config = settings()
    return MessageStore(
        connect(config.redis_url),
        retention_seconds=config.message_retention_seconds,
        queued_grace_seconds=config.queued_republish_after_seconds,
        lease_seconds=config.send_lease_seconds,
    )


@functools.cache
def provider() -> Provider:
    config = settings()
    return MockProvider(latency_ms=config.mock_latency_ms, failure_rate=config.mock_failure_rate)
