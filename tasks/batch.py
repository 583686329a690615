"""The batch chunk task: send a range of a batch's rows through the same path as single messages.

A chunk claims its rows a group at a time (one round trip per group), sends each, and records the
outcomes in one script call at a time, at least every RECORD_EVERY_SECONDS. Groups are sized to take about
a quarter of a second, so a pause or a cancel takes effect within a second; a row that must be retried
waits in the due index and goes on as its own `dispatch.send_message` task, exactly as a single message
would. A lock per chunk (with a token, kept alive by the lease keeper while the chunk runs) keeps a
republished copy from running beside a live one; only the lock's holder forgets the chunk when it ends.

A chunk can take minutes, longer than a platform waits after SIGTERM (Heroku: 30 s) before it kills:
when the worker starts shutting down, a running chunk stops before its next row, hands the rows it
claimed but did not send back (`retrying`, due now, the attempt not counted) and hands itself back (its
deadline set to now, so the reconciler of whichever worker runs next republishes it), instead of being
killed mid-send.
"""

from __future__ import annotations

import logging
import threading
import time

from celery.signals import worker_shutting_down

from dispatcher.services import Services
from dispatcher.store import Claim, chunk_member
from tasks import runtime
from tasks.celery_app import SEND_BATCH_CHUNK, app
from tasks.delivery import Outcome, deliver, hand_back_move, note_recorded, outcome_move
from tasks.leases import LeaseKeeper

log = logging.getLogger(__name__)

GROUP_SECONDS = 0.25
MAX_GROUP = 100
# A group's outcomes are recorded at least this often while it sends (a round trip each time): what a
# worker killed with -9 leaves sent but unrecorded is a few rows, not a whole group.
RECORD_EVERY_SECONDS = 0.02

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


def _send_group(services: Services, keeper: LeaseKeeper, claims: list[Claim]) -> int:
    """Send a claimed group one row after another while the keeper keeps the group's leases alive, and
    record the outcomes every RECORD_EVERY_SECONDS (one script call for the rows sent since), so
    a worker killed mid-group leaves only its last few sends unrecorded (the ambiguous window). A row taken
    over meanwhile (its lease was lost) is not sent here. When the worker starts stopping, the rows not sent
    yet are handed back. Returns how many rows were sent."""
    pending: list[tuple[Claim, Outcome]] = []
    flushed = time.monotonic()
    sent = 0
    for index, claim in enumerate(claims):
        if _stopping.is_set():
            _record(services, pending, hand_back_rows=[c for c in claims[index:] if not keeper.lost(c.message_id)])
            return sent
        if keeper.lost(claim.message_id):
            log.warning("row taken over by another worker: not sent here", extra={"message_id": claim.message_id})
            continue
        pending.append((claim, deliver(claim, services)))
        sent += 1
        if time.monotonic() - flushed >= RECORD_EVERY_SECONDS:
            _record(services, pending)
            pending, flushed = [], time.monotonic()
    _record(services, pending)
    return sent


def _record(
    services: Services, outcomes: list[tuple[Claim, Outcome]], hand_back_rows: list[Claim] | tuple[()] = ()
) -> None:
    """Record outcomes (and hand back unsent rows) in one script call: one round trip, the counters written once."""
    store = services.store
    moves = [outcome_move(store, claim.message_id, outcome, claim.attempt) for claim, outcome in outcomes]
    answers = store.move(moves + [hand_back_move(store, claim) for claim in hand_back_rows])
    for (claim, _), answer in zip(outcomes, answers, strict=False):
        note_recorded(answer, claim, services.senders)


@app.task(name=SEND_BATCH_CHUNK, acks_late=True, ignore_result=True)
def send_batch_chunk(batch_id: str, start: int, stop: int) -> str:
    services, keeper = runtime.services(), runtime.keeper()
    store = services.store
    member = chunk_member(batch_id, start, stop)
    context = {"batch_id": batch_id}
    token = store.lock_chunk(member)
    if token is None:
        log.info("chunk %s-%s skipped: another copy is running", start, stop, extra=context)
        return "busy"
    with keeper.lock(member, token):
        state = _send_rows(services, keeper, batch_id, store.batch_message_ids(batch_id, start, stop), member)
        # Only the lock's holder may forget the chunk, in the same step as the release: a copy that lost its
        # lock (it outlived it) leaves the chunk to the copy that holds it now.
        if not store.unlock_chunk(member, token, done=state != "handed back"):
            log.warning("chunk %s-%s lost its lock to another copy while it ran", start, stop, extra=context)
    log.info("chunk %s-%s ended: batch is %s", start, stop, state, extra=context)
    return state


def _send_rows(services: Services, keeper: LeaseKeeper, batch_id: str, ids: list[str], member: str) -> str:
    """Claim, send and record the chunk's rows a group at a time; returns the batch's state at the end
    ("handed back" when the worker started stopping, "taken over" when another copy took the lock)."""
    store = services.store
    position, group, state = 0, 10, "running"
    while position < len(ids):
        if keeper.lost(member):  # another copy holds the chunk now (this one outlived its lock): it goes on
            return "taken over"
        if _stopping.is_set():
            store.watch_until(member, store.clock())  # the reconciler republishes it at its next pass
            log.info("chunk handed back: the worker is stopping", extra={"batch_id": batch_id})
            return "handed back"
        began = time.monotonic()
        state, claims = store.claim_group(batch_id, ids[position : position + group])
        if state != "running":
            return state
        with keeper.claims({claim.message_id: claim.attempt for claim in claims}):
            sent = _send_group(services, keeper, claims)
        position += group
        group = next_group_size(sent, time.monotonic() - began) if sent else MAX_GROUP
    return state
