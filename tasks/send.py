"""The per-message task: claim the message, call the provider, record what happened.

The claim (queued/retrying → sending, with a lease) is what makes a task delivered twice send
once; the lease is kept alive while the call lives (tasks/leases.py). Attempts are counted on the
message record, not by Celery, so a task republished by the reconciler keeps the same budget. A retry
is not a Celery retry: the outcome `retrying` puts the message in the store's due index at its next
attempt's time, and the workers publish it from there (so no worker holds a countdown in memory).
"""

from __future__ import annotations

import json
import logging

from dispatcher import statuses
from tasks import runtime
from tasks.celery_app import SEND_MESSAGE, app
from tasks.delivery import deliver, note_recorded, record_durably

log = logging.getLogger(__name__)


@app.task(name=SEND_MESSAGE, acks_late=True, ignore_result=True)
def send_message(message_id: str) -> str:
    services = runtime.services()
    settings, store = services.settings, services.store
    claim = store.claim(message_id, take_over_expired=settings.lease_expired_action == "resend")
    if claim.outcome == "lease_expired":
        # The worker that held it died after (maybe) calling the provider: LEASE_EXPIRED_ACTION=fail
        # prefers never sending twice over never losing one.
        store.advance(
            message_id,
            statuses.FAILED,
            (statuses.SENDING,),
            attempt=claim.attempt,
            last_error=json.dumps({"kind": "ambiguous", "code": "lease_expired", "message": "worker died mid-send"}),
        )
        log.error(
            "message failed: its worker died mid-send and LEASE_EXPIRED_ACTION=fail", extra={"message_id": message_id}
        )
        return statuses.FAILED
    if not claim.claimed:
        if claim.outcome == "missing":
            store.forget_pending(message_id)
        # A paced message waits in the due index for its sender's slot; that is routine, not news.
        routine = ("paced", "sender_paused", "pool_held", "scheduled", "not_due")
        level = logging.DEBUG if claim.outcome in routine else logging.INFO
        log.log(level, "task skipped: message is %s", claim.outcome, extra={"message_id": message_id})
        return claim.outcome
    with runtime.keeper().claims({message_id: claim.attempt}):  # a slow call keeps its message
        outcome = deliver(claim, services)
        note_recorded(record_durably(store, message_id, outcome, claim.attempt), claim, services.senders)
    return outcome.status
