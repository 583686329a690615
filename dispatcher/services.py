"""The composition root: `build_services` makes every long-lived object of a process from its settings.

The web app (`dispatcher/api/app.py`), the workers (`tasks/runtime.py`), the CLIs and the benches all build
their services here, so the store, the quotas, the outbox and the rest are wired the same way wherever they
run. What the domain cannot build itself, because it belongs to the Celery side, comes in as an argument: the
task messages a new message or batch chunk is published with (`Publishers`, made by `tasks.envelope`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from dispatcher.contacts import Contacts
from dispatcher.failed_messages import FailedMessages
from dispatcher.messages import ChunkTaskFor, MessageService, MessageTaskFor
from dispatcher.outbox import Outbox
from dispatcher.pools import PoolRegistry
from dispatcher.provider_setup import ProviderCatalog
from dispatcher.quotas import Quotas
from dispatcher.senders import SenderRegistry
from dispatcher.settings import Settings
from dispatcher.status_reports import StatusReports
from dispatcher.store import MessageStore


@dataclass(frozen=True)
class Publishers:
    """How the store words the Celery task of a message (`message`) and of a batch chunk (`chunk`)."""

    message: MessageTaskFor
    chunk: ChunkTaskFor


@dataclass(frozen=True)
class Services:
    """A process's services, built once (per process: a prefork child builds its own, after the fork)."""

    settings: Settings
    store: MessageStore
    messages: MessageService
    catalog: ProviderCatalog
    outbox: Outbox
    reports: StatusReports
    failed: FailedMessages
    quotas: Quotas
    senders: SenderRegistry
    pools: PoolRegistry
    contacts: Contacts


def build_services(settings: Settings, publishers: Publishers, clock: Callable[[], float] = time.time) -> Services:
    """Every service, on one Redis client, reading one clock (tests pass their own to move time by hand)."""
    store = MessageStore.from_settings(settings, clock)
    quotas = Quotas(store.redis, settings.quotas, clock)
    outbox = Outbox(store.redis, settings.message_retention_seconds)
    catalog = ProviderCatalog(settings)
    senders = SenderRegistry(store.redis, settings.sender_limits)
    contacts = Contacts(store.redis, settings, clock, settings.callbacks.secret)
    messages = MessageService(store, publishers.message, publishers.chunk, settings.bulk_chunk_size, quotas, contacts)
    return Services(
        settings=settings,
        store=store,
        messages=messages,
        catalog=catalog,
        outbox=outbox,
        reports=StatusReports(
            store, outbox, contacts, settings.callbacks.status_webhook_url, settings.callbacks.secret
        ),
        failed=FailedMessages(store),
        quotas=quotas,
        senders=senders,
        pools=PoolRegistry(store.redis, senders, catalog),
        contacts=contacts,
    )
