"""What a worker process shares between its tasks: settings, the message store, the provider.

Built once per process on first use (after a prefork child is forked), so connection pools
are never shared across processes.
"""

from __future__ import annotations

import functools

from dispatcher.settings import Settings, load_settings
from dispatcher.store import MessageStore
from providers import MockProvider, Provider


@functools.cache
def settings() -> Settings:
    return load_settings()


@functools.cache
def store() -> MessageStore:
    return MessageStore.from_settings(settings())


@functools.cache
def provider() -> Provider:
    config = settings()
    return MockProvider(latency_ms=config.mock_latency_ms, failure_rate=config.mock_failure_rate)
