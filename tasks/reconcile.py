"""The reconciler: republishes messages and batch chunks whose task was lost or whose worker died.

The Redis broker can lose a task (Celery #3501, kombu #1405), and a task held by a worker killed
with -9 only comes back after the broker's visibility timeout (an hour). Every unfinished message
has a deadline in the store; past it, this republishes the message's task. The task's claim makes
a republish safe: a message already being sent, or finished, is left alone.
"""

from __future__ import annotations

import logging
import time

from dispatcher.failed_messages import FailedMessages
from tasks import runtime
from tasks.celery_app import RECONCILE, app

log = logging.getLogger(__name__)


def republish_overdue() -> int:
    """Republish every overdue message or batch chunk once, and give it a new deadline; returns how many."""
    from tasks.batch import send_batch_chunk
    from tasks.send import send_message

    store = runtime.store()
    grace = runtime.settings().queued_republish_after_seconds
    overdue = store.overdue()
    for member in overdue:
        if member.startswith("chunk:"):
            _, batch_id, start, stop = member.split(":")
            send_batch_chunk.apply_async((batch_id, int(start), int(stop)))
        else:
            send_message.apply_async((member,))
        store.watch_until(member, time.time() + grace)
    if overdue:
        log.warning("reconciler republished %d overdue message(s)", len(overdue))
    return len(overdue)


def trim_failed_listing() -> int:
    """Keep the failed listing to the newest JOB_REMOVE_ON_FAIL failures."""
    return FailedMessages(runtime.store()).keep_newest(runtime.settings().job_remove_on_fail)


@app.task(name=RECONCILE, ignore_result=True)
def reconcile() -> int:
    """The same pass, on demand: `celery -A tasks call dispatch.reconcile`."""
    trim_failed_listing()
    return republish_overdue()
