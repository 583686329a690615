"""What a worker process shares between its tasks: settings, the message store, the providers.

Built once per process on first use (after a prefork child is forked), so connection pools
are never shared across processes.
"""

from __future__ import annotations

import functools

from dispatcher.messages import MessageService
from dispatcher.outbox import Outbox
from dispatcher.provider_setup import ProviderCatalog
from dispatcher.settings import Settings, load_settings
from dispatcher.store import MessageStore


@functools.cache
def settings() -> Settings:
    return load_settings()


@functools.cache
def store() -> MessageStore:
    return MessageStore.from_settings(settings())


@functools.cache
def catalog() -> ProviderCatalog:
    return ProviderCatalog(settings())


@functools.cache
def outbox() -> Outbox:
    return Outbox(store().redis, settings().message_retention_seconds)


@functools.cache
def messages() -> MessageService:
    """Publishing as the API does it (the reconciler republishes and starts batches with it)."""
    from tasks.envelope import chunk_task_for, send_task_for

    queue = settings().queue_name
    return MessageService(store(), send_task_for(queue), chunk_task_for(queue), settings().bulk_chunk_size)


@functools.cache
def keeper():
    """The process's lease keeper (see tasks/leases.py)."""
    from tasks.leases import LeaseKeeper

    return LeaseKeeper(store())
