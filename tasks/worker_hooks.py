"""Worker start-up: JSON logs, the Redis eviction check, the lease keeper, the reconciler's timer (which also
expires messages past their validity), the release of messages held for their sender's pacing slot (and of
retries), and the release of status callbacks.

The reconciler runs inside every sending worker, but a Redis lock lets only one of them act per
period, so no separate beat process has to be remembered in the Procfile. Held messages are released
by every sending worker (taking them off the due index is atomic, so each is released once), a few
times a second. Callback chains are released only by workers that consume the callbacks queue
(the Procfile's `callbacks`), so their tasks never pile up where nobody runs them.
"""

from __future__ import annotations

import logging
import threading
import time

from celery.signals import setup_logging, task_received, worker_ready

from dispatcher import redis_keys, worker_registry
from dispatcher.logs import configure_logging
from dispatcher.redis_health import warn_if_clock_skewed, warn_if_evicting, warn_if_records_bloat
from tasks import runtime
from tasks.callbacks import CHAIN_LEASE_SECONDS
from tasks.envelope import callback_task_for
from tasks.reconcile import expire_past_validity, republish_overdue, trim_failed_listing

log = logging.getLogger(__name__)


@setup_logging.connect
def _json_logs(**_):
    configure_logging(runtime.settings().log_level)


@task_received.connect
def _keep_received(request, **_):
    """Sent in the worker's main process for each task it fetches, prefetched ones included (tasks/leases.py)."""
    runtime.keeper().keep_received(request)


def _reconcile_forever(hostname: str) -> None:
    interval = runtime.settings().reconcile_interval_seconds
    client = runtime.services().store.redis
    while True:
        time.sleep(interval)
        try:
            if client.set(redis_keys.RECONCILER_LOCK.key(), hostname, nx=True, ex=interval):
                expire_past_validity(runtime.services().store)
                republish_overdue(runtime.services().store, runtime.services().messages)
                trim_failed_listing()
        except Exception:  # a Redis outage must not kill the timer: try again next period
            log.exception("reconciler pass failed")


RELEASE_INTERVAL = 0.2


def _release_due_forever() -> None:
    """Publish held messages (and scheduled chunks, and retries) whose time has come: one round trip to
    take them, one to push all their tasks. They go to the front of the queue (the end Celery's Redis
    transport pops from): a message released for its pacing slot must not wait behind a backlog, or it
    would miss its slot and be booked again at the back of the line."""
    store, messages = runtime.services().store, runtime.services().messages
    while True:
        time.sleep(RELEASE_INTERVAL)
        try:
            due = store.pop_due()
            if due:
                pipe = store.redis.pipeline(transaction=False)
                for member in due:  # messages, and scheduled batches' chunks
                    pipe.rpush(*messages.task_for_member(member))
                pipe.execute()
        except Exception:  # a Redis outage must not kill the loop; the reconciler covers what was taken
            log.exception("releasing paced messages failed")


def _release_callbacks_forever() -> None:
    """Publish a task for every chain of status callbacks whose time has come (leased, so a lost task
    is replaced after CHAIN_LEASE_SECONDS)."""
    outbox = runtime.services().outbox
    task_for = callback_task_for(runtime.settings().callbacks.queue_name)
    while True:
        time.sleep(RELEASE_INTERVAL)
        try:
            chains = outbox.take_due(CHAIN_LEASE_SECONDS)
            if chains:
                pipe = outbox.redis.pipeline(transaction=False)
                for chain in chains:
                    pipe.lpush(*task_for(chain))
                pipe.execute()
        except Exception:  # a Redis outage must not kill the loop; leases bring back what was taken
            log.exception("releasing status callbacks failed")


HEARTBEAT_INTERVAL = 5


def _heartbeat_forever(hostname: str, queues: list[str]) -> None:
    """Say every few seconds that this worker is alive and what it consumes (/health/ready, /metrics)."""
    client = runtime.services().store.redis
    while True:
        try:
            worker_registry.beat(client, hostname, queues)
        except Exception:  # a Redis outage must not kill the heartbeat
            log.exception("worker heartbeat failed")
        time.sleep(HEARTBEAT_INTERVAL)


@worker_ready.connect
def _start_reconciler(sender, **_):
    warn_if_evicting(runtime.services().store.redis)
    warn_if_records_bloat(runtime.services().store.redis)
    warn_if_clock_skewed(runtime.services().store.redis)
    consumed = set(sender.app.amqp.queues.consume_from or sender.app.amqp.queues)
    threading.Thread(
        target=_heartbeat_forever, args=(sender.hostname, sorted(consumed)), name="heartbeat", daemon=True
    ).start()
    if runtime.settings().callbacks.queue_name in consumed:
        # Only a worker that runs callback tasks publishes them: without one, chains wait in Redis.
        threading.Thread(target=_release_callbacks_forever, name="callbacks-release", daemon=True).start()
    if runtime.settings().queue_name not in consumed:
        return
    runtime.keeper().start(consumer=True)  # what this worker has received stays its own while it lives
    threading.Thread(target=_release_due_forever, name="pacing-release", daemon=True).start()
    threading.Thread(target=_reconcile_forever, args=(sender.hostname,), name="reconciler", daemon=True).start()
