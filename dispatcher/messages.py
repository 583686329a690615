"""Accepting a message: the idempotency rule and the record, independent of HTTP.

`external_id` is unique per API key. The first request creates the message; a replay with the
same recipient and text gets that first message back; the same external_id with another
recipient or text is a conflict, because the caller almost certainly reused an id by mistake.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from dispatcher import statuses
from dispatcher.store import MessageStore, NewMessage, iso


class IdempotencyConflict(Exception):
    """The external_id already names a message with another recipient or text."""


@dataclass(frozen=True)
class Accepted:
    """The answer to a send: the message's id, its status now, when it was first queued, and whether it is a replay."""

    message_id: str
    status: str
    queued_at: str
    replayed: bool


def key_id(api_key: str) -> str:
    """A stable, non-secret name for an API key, used to scope external_ids; the key itself is never stored."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def fingerprint(recipient: str, body: str) -> str:
    return hashlib.sha256(f"{recipient}\x00{body}".encode()).hexdigest()


def new_message_id() -> str:
    return f"msg-{uuid.uuid4()}"


class MessageService:
    """Accepts messages into the store together with their send task.

    `task_for(message_id)` returns (queue key, task payload): the store pushes that payload in the
    same atomic step that writes the record, so every accepted message has a task.
    """

    def __init__(self, store: MessageStore, provider: str, task_for: Callable[[str], tuple[str, str]]):
        self.store = store
        self.provider = provider
        self.task_for = task_for

    def accept(self, api_key_id: str, recipient: str, body: str, external_id: str) -> Accepted:
        message_id = new_message_id()
        new = NewMessage(
            message_id=message_id,
            key_id=api_key_id,
            external_id=external_id,
            recipient=recipient,
            body=body,
            fingerprint=fingerprint(recipient, body),
            provider=self.provider,
            created_at=time.time(),
        )
        queue, payload = self.task_for(message_id)
        created, stored_id = self.store.create(new, queue, payload)
        if created:
            return Accepted(message_id, statuses.QUEUED, iso(new.created_at), replayed=False)
        existing = self.store.get(stored_id)
        if existing is None or existing.fingerprint != new.fingerprint:
            raise IdempotencyConflict(stored_id)
        return Accepted(existing.message_id, existing.status, existing.created_at, replayed=True)
