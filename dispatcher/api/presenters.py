"""How the API shows what it stores: a message (its number masked, its text left out), and the queue's counts."""

from __future__ import annotations

from dispatcher import statuses
from dispatcher.store import Message, MessageStore
from dispatcher.times import iso
from providers.base import mask_phone


def message_view(message: Message) -> dict:
    """A message as the API shows it: recipient masked, text left out."""
    return {
        "message_id": message.message_id,
        "external_id": message.external_id,
        "status": message.status,
        "recipient": mask_phone(message.recipient),
        "provider": message.provider,
        "sender": message.sender,
        "pool": message.pool,
        "provider_message_id": message.provider_message_id,
        "attempts": message.attempts,
        "last_error": message.last_error,
        "history": message.history,
        "created_at": message.created_at,
        "updated_at": message.updated_at,
        "expires_at": iso(message.expires_at) if message.expires_at else None,
        "fallback_template_used": message.fallback_used,
    }


def queue_counts(store: MessageStore) -> dict[str, int]:
    """Messages by status, every status present (zero when none), over every account."""
    counts = store.counts()
    return {status: max(0, counts.get(status, 0)) for status in statuses.ALL}
