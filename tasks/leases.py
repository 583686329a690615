"""Leases kept alive while their holder lives, so they can be short.

A claim (a message being sent) and a chunk lock last SEND_LEASE_SECONDS. Rather than making the lease
longer than the slowest provider call, and so making a dead worker's messages wait that long, every
worker process keeps what it holds alive: a thread renews, every third of a lease, in one round trip,
the claims whose calls are in flight, the locks of the chunks it runs, and the reconciler's deadline of
every task it has received but not finished (prefetched tasks included). A task's deadline also moves a
lease ahead the moment the worker receives it (`keep_received`): a worker fetches the next task as each one
finishes, so most of what it holds arrived since the last renewal. A live but slow call keeps its message; a
worker killed with -9 stops renewing, and within a lease the reconciler republishes its work.

A claim found lost (taken over after a renewal failed, e.g. a Redis blip longer than the lease) is
reported back, so a chunk does not send a row another worker now holds; a late outcome of a lost claim
is refused by the store anyway (see `advance`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator

from dispatcher.store import MessageStore, chunk_member
from tasks.celery_app import SEND_BATCH_CHUNK, SEND_MESSAGE

log = logging.getLogger(__name__)


class LeaseKeeper:
    def __init__(self, store: MessageStore):
        self.store = store
        self.period = store.lease_seconds / 3
        self._claims: dict[str, int] = {}
        self._locks: dict[str, str] = {}
        self._lost: set[str] = set()
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None
        self._consumer = False  # this process receives the worker's tasks (its main process)
        os.register_at_fork(after_in_child=self._forget_parent)

    def _forget_parent(self) -> None:
        """A forked pool child holds nothing yet, and must not inherit a mutex the parent's keeper held."""
        self._mutex = threading.Lock()
        self._claims, self._locks, self._lost, self._thread = {}, {}, set(), None
        self._consumer = False  # a child's copy of the parent's received tasks is stale from the start

    def start(self, consumer: bool = False) -> None:
        """Start renewing: a worker's main process at start, as the `consumer` of the tasks it receives; any
        process that claims or locks, then."""
        with self._mutex:
            self._consumer = self._consumer or consumer
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._forever, name="lease-keeper", daemon=True)
                self._thread.start()

    @contextlib.contextmanager
    def claims(self, claims: dict[str, int]) -> Iterator[None]:
        """Keep these claims (message id → attempt) alive while the block runs."""
        self.start()
        with self._mutex:
            self._claims.update(claims)
        try:
            yield
        finally:
            with self._mutex:
                for message_id in claims:
                    self._claims.pop(message_id, None)
                    self._lost.discard(message_id)

    @contextlib.contextmanager
    def lock(self, member: str, token: str) -> Iterator[None]:
        """Keep a chunk's lock (and its deadline) alive while the block runs."""
        self.start()
        with self._mutex:
            self._locks[member] = token
        try:
            yield
        finally:
            with self._mutex:
                self._locks.pop(member, None)
                self._lost.discard(member)

    def keep_received(self, request) -> None:
        """A task this worker has just received (a Celery request): its deadline moves a lease ahead now, in the
        consumer, before the task goes to the pool. The broker keeps no copy of a task once a worker has fetched
        it (celeryconfig.py): until this is done, a worker killed with -9 would leave the task to
        QUEUED_REPUBLISH_AFTER (300 s) rather than to a lease. Done here rather than from the keeper's thread,
        which had to wait for the interpreter behind a threads pool's senders (a kill in that wait left the
        task behind in some runs). A plain ZADD, not the keeper's script: this round trip holds up the
        worker's loop for every task it fetches, and the script cost single sends about 5 % of their rate."""
        member = task_member(request)
        if member is None:
            return
        try:
            self.store.watch_until(member, self.store.clock() + self.store.lease_seconds)
        except Exception:  # Redis unreachable: the keeper's next renewal tries again (the task is in `requests`)
            log.exception("keeping a received task failed")

    def lost(self, member: str) -> bool:
        """Whether a claim or lock held here was found taken by another worker."""
        with self._mutex:
            return member in self._lost

    def keep_now(self) -> None:
        """One renewal: what this process holds, one lease longer."""
        with self._mutex:
            claims, locks = list(self._claims.items()), list(self._locks.items())
        held = received_members() if self._consumer else []
        if not (claims or locks or held):
            return
        lost_claims, lost_locks = self.store.keep(claims, locks, held)
        with self._mutex:  # only what is still held here: a block that ended meanwhile has nothing to learn
            lost = {m for m in lost_claims if m in self._claims} | {m for m in lost_locks if m in self._locks}
            self._lost |= lost
        if lost:
            log.warning("%d claim(s) or chunk lock(s) held here were taken over by another worker", len(lost))

    def _forever(self) -> None:
        wake = threading.Event()
        while True:
            try:
                self.keep_now()
            except Exception:  # a Redis outage must not kill the keeper; the fence covers a lease lost meanwhile
                log.exception("renewing leases failed")
            wake.wait(self.period)


def received_members() -> list[str]:
    """The work behind every task this worker process has received and not finished (reserved, prefetched
    or running): message ids and chunk members. Empty outside a worker's main process."""
    from celery.worker import state

    try:
        requests = list(state.requests.values())
    except RuntimeError:  # changed while copied (another thread received a task): next round
        return []
    return [member for member in map(task_member, requests) if member is not None]


def task_member(request) -> str | None:
    """The work behind a received task (a Celery request), as the reconciler's deadlines name it: a message id,
    a chunk member, or None for any other task."""
    try:
        if request.task_name == SEND_MESSAGE:
            return request.args[0]
        if request.task_name == SEND_BATCH_CHUNK:
            return chunk_member(*request.args)
    except (IndexError, TypeError):  # a task someone published by hand with odd arguments
        pass
    return None
