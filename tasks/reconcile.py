"""The reconciler: republishes messages and batch chunks whose task was lost or whose worker died,
starts batches whose request died before starting them, and expires messages past their validity.

The Redis broker can lose a task (Celery #3501, kombu #1405), and a task held by a worker killed
with -9 only comes back after the broker's visibility timeout (an hour). Every unfinished message
has a deadline in the store; past it, this republishes the message's task. The task's claim makes
a republish safe: a message already being sent, or finished, is left alone. A batch left
`accepting` (its rows written by a request that died before publishing its chunks) is started here,
in the same atomic step the request would have taken. A message whose `expires_at` has come while it
waits (however it is held: a paused sender, pool or batch, a schedule, a retry's backoff) becomes `expired`
here, at most a pass late; its claim would refuse to send it anyway.
"""

from __future__ import annotations

import logging

from dispatcher.messages import MessageService
from dispatcher.store import ACCEPT_PREFIX, MessageStore
from tasks import runtime
from tasks.celery_app import RECONCILE, app

log = logging.getLogger(__name__)


def republish_overdue(store: MessageStore, messages: MessageService) -> int:
    """Republish every overdue message or batch chunk once, and give it a new deadline; start every batch
    left accepting. Returns how many were overdue. Tasks are pushed the way the API pushes them (the
    envelopes of `tasks.envelope`), in one round trip for all of them."""
    read_at, overdue = store.overdue()
    for member in [m for m in overdue if m.startswith(ACCEPT_PREFIX)]:
        batch_id = member.removeprefix(ACCEPT_PREFIX)
        outcome = messages.start_accepted(batch_id)
        log.warning("reconciler started a batch its request left accepting: %s", outcome, extra={"batch_id": batch_id})
    # Re-armed first, compared with the deadline just read: work a live worker renewed meanwhile is left alone.
    rearmed = store.rearm(
        [m for m in overdue if not m.startswith(ACCEPT_PREFIX)], read_at, read_at + store.queued_grace_seconds
    )
    if not rearmed:
        return len(overdue)
    pipe = store.redis.pipeline(transaction=False)
    for member in rearmed:
        pipe.lpush(*messages.task_for_member(member))
    pipe.execute()
    log.warning("reconciler republished %d overdue message(s) or chunk(s)", len(rearmed))
    return len(overdue)


# Messages expired per script call: each slice holds Redis for a few milliseconds at most.
EXPIRE_SLICE = 1000


def expire_past_validity(store: MessageStore) -> int:
    """Expire every waiting message whose expires_at has come, a slice at a time, until a slice comes back
    short; returns how many expired."""
    total = 0
    while True:
        expired, taken = store.expire_due(EXPIRE_SLICE)
        total += expired
        if taken < EXPIRE_SLICE:
            break
    if total:
        log.info("%d message(s) expired unsent: past their validity", total)
    return total


def trim_failed_listing() -> int:
    """Keep the failed listing to the newest JOB_REMOVE_ON_FAIL failures."""
    services = runtime.services()
    return services.failed.keep_newest(services.settings.job_remove_on_fail)


@app.task(name=RECONCILE, ignore_result=True)
def reconcile() -> int:
    """The same pass, on demand: `celery -A tasks call dispatch.reconcile`."""
    trim_failed_listing()
    services = runtime.services()
    expire_past_validity(services.store)
    return republish_overdue(services.store, services.messages)
