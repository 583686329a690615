"""The batch chunk task: send a range of a batch's rows through the same path as single messages.

A chunk claims its rows a group at a time (one round trip per group), sends each, and records the
group's outcomes in one pipelined round trip. Groups are sized to take about a quarter of a second,
so a pause or a cancel takes effect within a second; a row that must be retried gets its own
`dispatch.send_message` task, exactly as a single message would. A lock per chunk keeps a
republished copy from running beside a live one.

A chunk can take minutes, longer than a platform waits after SIGTERM (Heroku: 30 s) before it kills:
when the worker starts shutting down, a running chunk stops claiming rows and hands itself back (its
deadline set to now, so the reconciler of whichever worker runs next republishes it), instead of being
killed mid-send.
"""

from __future__ import annotations

import logging
import threading
import time

from celery.signals import worker_shutting_down

from dispatcher import statuses
from dispatcher.store import Claim, chunk_member
from tasks import runtime
from tasks.celery_app import SEND_BATCH_CHUNK, app
from tasks.delivery import Outcome, deliver, note_recorded, record

log = logging.getLogger(__name__)

GROUP_SECONDS = 0.25
MAX_GROUP = 100

_stopping = threading.Event()


@worker_shutting_down.connect
def _stop_claiming(**_):
    """Warm shutdown began (SIGTERM to the worker): running chunks hand themselves back."""
    _stopping.set()


def next_group_size(sent: int, elapsed: float) -> int:
    """As many rows as take about GROUP_SECONDS at the pace just seen (between 1 and MAX_GROUP)."""
    if sent == 0 or elapsed <= 0:
        return MAX_GROUP
    return max(1, min(MAX_GROUP, int(GROUP_SECONDS * sent / elapsed)))


def _send_group(store, claims: list[Claim], renew_after: float) -> tuple[list[Claim], list[Outcome]]:
    """Send a claimed group one row after another. The group shares one lease: when the calls are slow (timeouts),
    the group's leases are renewed before they run out, so the reconciler cannot hand them to
    another worker while this chunk is alive; a row taken over anyway (its lease ran out first) is not sent here.
    `renew_after` leaves room for one more provider call (at most connect + read timeout) within the lease.
    Returns the rows sent and their outcomes."""
    sent: list[Claim] = []
    outcomes: list[Outcome] = []
    held_since = time.monotonic()
    ours = {claim.message_id for claim in claims}
    for claim in claims:
        if time.monotonic() - held_since > renew_after:
            ours = store.renew_leases(claims)  # the rows sent too: they stay `sending` until the group is recorded
            held_since = time.monotonic()
        if claim.message_id not in ours:
            log.warning("row taken over by another worker: not sent here", extra={"message_id": claim.message_id})
            continue
        sent.append(claim)
        outcomes.append(deliver(claim))
    return sent, outcomes


@app.task(name=SEND_BATCH_CHUNK, bind=True, acks_late=True, ignore_result=True)
def send_batch_chunk(self, batch_id: str, start: int, stop: int) -> str:
    from tasks.send import send_message

    store = runtime.store()
    settings = runtime.settings()
    member = chunk_member(batch_id, start, stop)
    lock = f"dispatch:lock:{member}"
    context = {"batch_id": batch_id}
    if not store.redis.set(lock, self.request.id or "local", nx=True, ex=settings.send_lease_seconds):
        log.info("chunk %s-%s skipped: another copy is running", start, stop, extra=context)
        return "busy"
    renew_after = (settings.send_lease_seconds - settings.provider_connect_timeout - settings.provider_read_timeout) / 2
    ids = store.batch_message_ids(batch_id, start, stop)
    position, group, state = 0, 10, "running"
    while position < len(ids):
        if _stopping.is_set():
            store.watch_until(member, time.time())
            log.info("chunk %s-%s handed back: the worker is stopping", start, stop, extra=context)
            state = "handed back"
            break
        began = time.monotonic()
        state, claims = store.claim_group(batch_id, ids[position : position + group])
        if state != "running":
            break
        claims, outcomes = _send_group(store, claims, renew_after)
        pipe = store.redis.pipeline(transaction=False)
        for claim, outcome in zip(claims, outcomes, strict=True):
            record(store, claim.message_id, outcome, claim.attempt, client=pipe)
        # A live chunk pushes its deadline a lease ahead after each group: if its worker dies, the reconciler
        # republishes it after SEND_LEASE_SECONDS rather than QUEUED_REPUBLISH_AFTER (a copy that overlaps a
        # live but slow chunk is safe: each row is claimed once).
        store.watch_until(member, time.time() + settings.send_lease_seconds, client=pipe)
        pipe.expire(lock, settings.send_lease_seconds)
        answers = pipe.execute()
        for claim, answer in zip(claims, answers, strict=False):
            note_recorded(answer, claim)
        for claim, outcome, answer in zip(claims, outcomes, answers, strict=False):
            if outcome.status == statuses.RETRYING and answer.startswith("ok"):
                send_message.apply_async((claim.message_id,), countdown=outcome.retry_in)
        position += group
        group = next_group_size(len(claims), time.monotonic() - began) if claims else MAX_GROUP
    if state != "handed back":
        store.forget_pending(member)
    store.redis.delete(lock)
    log.info("chunk %s-%s ended: batch is %s", start, stop, state, extra=context)
    return state
