"""What a view needs of the request it serves: the app's services, and the caller's own messages and batches.

Every view finds a message or a batch by id through `own_message` / `own_batch` (or their `find_` forms,
which answer None), so no route can forget that another account's ids name nothing: a 404, the same as
for an id that does not exist.
"""

from __future__ import annotations

from flask import current_app

from dispatcher.accounts import owner
from dispatcher.api.auth import account
from dispatcher.api.errors import ApiError
from dispatcher.services import Services
from dispatcher.store import Message


def services() -> Services:
    """The services of the app serving this request (built by `dispatcher.services.build_services`)."""
    return current_app.extensions["dispatcher"]


def find_own_message(message_id: str) -> Message | None:
    """The caller's message with that id, or None (none, or another account's)."""
    message = services().store.get(message_id)
    return message if message is not None and message.account == account() else None


def own_message(message_id: str) -> Message:
    """The caller's message with that id, or the contract's 404."""
    message = find_own_message(message_id)
    if message is None:
        raise ApiError(404, "Message not found", "message_not_found", field="message_id")
    return message


def find_own_batch(batch_id: str) -> dict | None:
    """The caller's batch with that id (its record), or None (none, or another account's)."""
    batch = services().store.batch(batch_id)
    return batch if batch is not None and owner(batch) == account() else None


def own_batch(batch_id: str) -> dict:
    """The caller's batch with that id (its record), or a 404."""
    batch = find_own_batch(batch_id)
    if batch is None:
        raise ApiError(404, "Batch not found", "batch_not_found", field="batch_id")
    return batch
