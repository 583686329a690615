"""The message store: every message's record, its history and its idempotency key, in Redis.

Each change is one Lua script (`dispatcher/lua/`, registered by `dispatcher/scripts.py`), so it is
atomic: two requests with one external_id create one message, a task delivered twice claims the
message once, a status never moves backwards, and the counters always agree with the records.

Its keys, and those of every other module, are listed in `dispatcher/redis_keys.py`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice

import redis
from redis.client import NEVER_DECODE
from redis.commands.core import Script

from dispatcher import history, record_names, redis_keys, scripts, statuses
from dispatcher.accounts import owner
from dispatcher.names import (
    is_batch_id,
    is_message_id,
    message_id_for,
    packed_message_id,
    packed_row_ids,
    unpacked_message_id,
)
from dispatcher.send_window import SendWindow
from dispatcher.senders import sender_id
from dispatcher.settings import Settings, redis_ssl_options
from dispatcher.times import iso, millis, shown

DAY = 86400
# Rows per create_rows script call: each call holds Redis for a few milliseconds at most.
ROWS_PER_SCRIPT = 1000
# How long a batch may stay `accepting` (its rows written, its chunks not yet published) before the
# reconciler takes the request for dead and starts the batch itself. An honest 10,000-row request
# spends well under a second there.
ACCEPT_GRACE_SECONDS = 10


def connect(url: str) -> redis.Redis:
    """A Redis client with timeouts short enough that an outage becomes a quick, clear error.

    A rediss:// client verifies the server's certificate unless the URL says `ssl_cert_reqs=none`
    (REDIS_TLS_VERIFY=none, for Heroku Redis's self-signed one): stated here rather than left to
    redis-py's default, so it cannot drift from what Celery's broker does (`redis_ssl_options`).
    """
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=5,
        socket_connect_timeout=2,
        health_check_interval=30,
        **(redis_ssl_options(url) or {}),
    )


class QuotaRefused(Exception):
    """A create script refused the request by the account's quota: its code and figure (dispatcher/quotas.py)."""

    def __init__(self, code: str, figure: float):
        super().__init__(code)
        self.code = code
        self.figure = figure


@dataclass(frozen=True)
class NewMessage:
    """A validated message the API is about to accept."""

    message_id: str
    external_id: str
    recipient: str
    body: str
    fingerprint: str


@dataclass(frozen=True)
class Message:
    """A message as its record holds it (what it says is in its content key, read only to send it)."""

    message_id: str
    account: str
    external_id: str
    recipient: str
    fingerprint: str
    status: str
    provider: str
    provider_message_id: str | None
    attempts: int
    last_error: dict | None
    created_at: str
    updated_at: str
    batch_id: str | None = None
    history: list[dict] = field(default_factory=list)
    sender: str | None = None  # for a pool's message, the member given at its claim (None before)
    pool: str | None = None
    expires_at: float | None = None  # unsent by then, it becomes `expired` (None: it may wait for ever)
    fallback_used: bool = False  # sent as its fallback template: the contact's 24-hour window was closed


@dataclass(frozen=True)
class Move:
    """One message's move to `status`, allowed only from one of `allowed_from` (MessageStore.move).

    `attempt` fences an outcome to the claim that made it: a message still `sending` but claimed again
    since (its lease ran out while the first call went on) refuses the move with 'stale'. Every provider
    outcome passes it, and `send_seconds`, how long its call took (the send latency /metrics shows); without
    it the move is unfenced (an operator's or a report's). `pending_deadline` keeps the message watched by
    the reconciler until then; None stops watching it. `detail` goes into the history entry, `fields` onto
    the record.
    """

    message_id: str
    status: str
    allowed_from: tuple[str, ...]
    pending_deadline: float | None = None
    detail: dict | None = None
    attempt: int | None = None
    send_seconds: float | None = None
    fields: dict[str, str | float] = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    """The outcome of a claim: `claimed` (send now), or why not (`busy`, `lease_expired`, `paused`,
    `canceled`, `expired` (past its validity: never sent), `missing`, or the status the message is already in).

    A successful claim carries what the send needs, so the task makes no second round trip.
    """

    message_id: str
    outcome: str
    attempt: int = 0
    recipient: str = ""
    body: str = ""
    external_id: str = ""
    provider: str = ""
    sender: str | None = None
    media: str | None = None  # JSON, as stored (in the content key)
    template: str | None = None  # JSON, as stored
    pool: str | None = None  # the sender pool that gave it its member (provider, sender)

    @property
    def claimed(self) -> bool:
        return self.outcome == "claimed"


@dataclass(frozen=True)
class RowOutcome:
    """What became of one bulk row: created, the message its external_id already names, or refused by a rule."""

    created: bool
    message_id: str
    fingerprint: str = ""
    batch_id: str | None = None  # the batch the row belongs to (None: a single send's message)
    refused: str = ""  # the contact's rule that refused it (dispatcher/contacts.py), when not created


def chunk_member(batch_id: str, start: int, stop: int) -> str:
    return f"chunk:{batch_id}:{start}:{stop}"


# The pending entry of a batch still `accepting` is this prefix and its id (see `create_batch`).
ACCEPT_PREFIX = "accept:"


class MessageStore:
    def __init__(
        self,
        client: redis.Redis,
        retention_seconds: int,
        queued_grace_seconds: int,
        lease_seconds: int,
        sender_limits: dict[str, tuple[float, int, float]] | None = None,
        auto_pause: tuple[int, float] = (0, 1.0),
        send_window: SendWindow | None = None,
        clock: Callable[[], float] = time.time,
        sticky_seconds: int = 30 * 86400,
        session_window: tuple[str, ...] = (),
    ):
        self.redis = client
        # Every time the store writes (leases, slots, deadlines, retention) comes from this one clock, so
        # tests can move it by hand instead of sleeping.
        self.clock = clock
        self.send_window = send_window
        self.auto_pause_window, self.auto_pause_ratio = auto_pause
        # Each provider's default pace and whether WhatsApp holds it to the 24-hour window (`session_window`,
        # checked at the claim: lib/contacts.lua), as the claim scripts take them.
        limits = {provider: {"rate": 0.0, "burst": 1, "jitter": 0.0} for provider in session_window}
        for provider, (rate, burst, jitter) in (sender_limits or {}).items():
            limits[provider] = {"rate": rate, "burst": burst, "jitter": jitter}
        for provider in session_window:
            limits[provider]["window"] = True
        self.limits = json.dumps(limits)

        self.retention_seconds = retention_seconds
        self.sticky_seconds = sticky_seconds
        self.queued_grace_seconds = queued_grace_seconds
        self.lease_seconds = lease_seconds
        self._create = self.script("create")
        self._create_rows = self.script("create_rows")
        self._claim = self.script("claim")
        self._claim_group = self.script("claim_group")
        self._keep = self.script("keep")
        self._unlock = self.script("unlock")
        self._advance = self.script("advance")
        self._cancel = self.script("cancel")
        self._cancel_batch = self.script("cancel_batch")
        self._set_batch_state = self.script("set_batch_state")
        self._start_batch = self.script("start_batch")
        self._pop_due = self.script("pop_due")
        self._rearm = self.script("rearm")
        self._expire_due = self.script("expire_due")
        self._hold_sender = self.script("hold_sender")

    def script(self, name: str) -> Script:
        """One of `dispatcher/scripts.py`'s scripts, for this store's client, retention and pools' stickiness."""
        return scripts.register(self.redis, name, self.retention_seconds, self.sticky_seconds)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Callable[[], float] = time.time) -> MessageStore:
        return cls(
            connect(settings.redis_url),
            retention_seconds=settings.message_retention_seconds,
            queued_grace_seconds=settings.queued_republish_after_seconds,
            lease_seconds=settings.send_lease_seconds,
            sender_limits=settings.sender_limits,
            auto_pause=(settings.auto_pause_window, settings.auto_pause_ratio),
            send_window=settings.send_window,
            clock=clock,
            sticky_seconds=settings.pool_sticky_days * 86400,
            session_window=settings.session_window_providers,
        )

    @staticmethod
    def message_key(message_id: str) -> str:
        return redis_keys.MESSAGE.key(message_id)

    @staticmethod
    def external_key(account: str, external_id: str) -> str:
        """The external_id key of a message accepted before ids followed from external_ids (read, never
        written: see create.lua)."""
        return redis_keys.EXTERNAL_ID.key(account, external_id)

    @staticmethod
    def batch_key(batch_id: str) -> str:
        return redis_keys.BATCH.key(batch_id)

    # --- accepting ---

    def create(
        self,
        new: NewMessage,
        account: str,
        created_at: float,
        queue_key: str,
        task_payload: str,
        extra: dict[str, str] | None = None,
        scheduled_for: float | None = None,
        quota: tuple[list[str], list] | None = None,
        rules: str = "",
        expires_at: float | None = None,
        content: dict[str, str] | None = None,
    ) -> tuple[bool, str]:
        """Record `new` and push its task in one atomic step, unless its external_id is taken.

        Returns (created, message_id): the new id, or the id that the external_id already maps to.
        The record and the task are written together, so an accepted message always has a task,
        and a failed write leaves nothing behind. `extra` adds fields (provider, sender, ...) when not empty;
        `content` (the route's media, template, fallback_template, as JSON text) joins the body in its own key.
        A message `scheduled_for` later gets no task now: it waits in the due index until then. `quota` (the
        keys and arguments of dispatcher/quotas.py's Admission) has the script check the account's quotas in
        the same step: QuotaRefused when over one. A message with an `expires_at` (a timestamp) that is still
        unsent then becomes `expired`.
        """
        fields = {
            "account": account,
            "external_id": new.external_id,
            "recipient": new.recipient,
            "fingerprint": new.fingerprint,
            "status": statuses.SCHEDULED if scheduled_for else statuses.QUEUED,
            "attempts": 0,
            "created_at": millis(created_at),
            **{name: value for name, value in (extra or {}).items() if value},
            **({"scheduled_for": scheduled_for, "send_at": scheduled_for} if scheduled_for else {}),
            **({"expires_at": expires_at} if expires_at else {}),
        }
        quota_keys, quota_args = quota or (["", ""], ["", "", "", "", ""])
        created, *answer = self._create(
            keys=[
                self.external_key(account, new.external_id),
                self.message_key(new.message_id),
                queue_key,
                *quota_keys,
            ],
            args=[
                new.message_id,
                (scheduled_for or created_at) + self.queued_grace_seconds,
                fields["status"],
                scheduled_for or "",
                task_payload,
                *quota_args,
                rules,
                new.body,
                _content_members(content),
                *_flat(record_names.stored(fields)),
            ],
        )
        if created == -1:
            raise QuotaRefused(answer[0], float(answer[1]))
        return bool(created), answer[0]

    def create_batch(
        self,
        batch_id: str,
        account: str,
        rows: Iterable[NewMessage],
        created_at: float,
        shared: dict[str, str],
        scheduled_for: float | None = None,
        rules: str = "",
        expires_at: float | None = None,
        content: dict[str, str] | None = None,
    ) -> list[RowOutcome]:
        """Record a batch's rows, ROWS_PER_SCRIPT to a script call, while `rows` are still being produced.

        `rows` may be a generator that validates them: each slice is written by a thread of its own as soon as
        it is complete, in order, while the next one is validated (Redis's work and ours overlap, where a
        single round trip after the last row would add them up). Returns an outcome per row, in order.

        Each row is created unless its external_id is taken; `shared` holds the fields every row
        gets (provider, callback_url, ...). The first slice that creates a row creates the batch, in
        state `accepting`: nothing sends until `start_batch` publishes its chunks, and if that never
        happens (the request died in between) the reconciler starts it ACCEPT_GRACE_SECONDS later.
        A request whose every row is a replay writes nothing. `rules` (dispatcher/contacts.py Contacts.rules, as
        JSON) has each new row checked against the contact's rules; a refused one is not created. Every row gets
        the batch's `expires_at`, if any, and `content` (as for `create`) beside its own body.
        """
        stamp = iso(created_at)
        batch_key = self.batch_key(batch_id)
        present: dict[str, object] = {name: value for name, value in shared.items() if value}
        if scheduled_for:
            present.update(scheduled_for=scheduled_for, send_at=scheduled_for)
        if expires_at:
            present.update(expires_at=expires_at)
        common = {
            **present,
            "account": account,
            "batch_id": batch_id,
            "created_at": millis(created_at),
        }
        header = json.dumps({"batch_id": batch_id, "account": account, "created_at": stamp, **present})
        flat_common = _flat(record_names.stored(common))
        members = _content_members(content)
        status = statuses.SCHEDULED if scheduled_for else statuses.QUEUED
        accept_deadline = self.clock() + ACCEPT_GRACE_SECONDS
        keys = [batch_key, redis_keys.BATCH_MESSAGES.key(batch_id)]
        written: list[tuple[list[NewMessage], Future]] = []
        # One thread: the slices reach Redis in the rows' order, which is the batch's row list's.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="create-rows") as writer:
            rows = iter(rows)
            while slice_ := list(islice(rows, ROWS_PER_SCRIPT)):
                packed = json.dumps([[r.message_id, r.external_id, r.recipient, r.body, r.fingerprint] for r in slice_])
                args = [
                    self.external_key(account, ""),  # the script appends each external_id
                    status,
                    packed,
                    header,
                    accept_deadline,
                    batch_id,
                    rules,
                    members,
                    packed_row_ids([r.message_id for r in slice_]),
                    *flat_common,
                ]
                written.append((slice_, writer.submit(self._create_rows, keys=keys, args=args)))
        outcomes = []
        for slice_, reply in written:
            try:
                answers = reply.result()
            except redis.ResponseError as error:
                if str(error).startswith("BATCH_STARTED"):
                    # The reconciler took this request for dead and started the batch: the rows written so far
                    # go out with it; the caller's replay accepts the rest.
                    raise redis.TimeoutError(
                        f"bulk request outlived ACCEPT_GRACE_SECONDS ({ACCEPT_GRACE_SECONDS} s)"
                    ) from None
                raise
            for answer, row in zip(answers, slice_, strict=True):
                if answer[0] == 1:
                    outcomes.append(RowOutcome(True, row.message_id, batch_id=batch_id))
                elif answer[0] == -1:
                    outcomes.append(RowOutcome(False, "", refused=answer[1]))
                else:
                    outcomes.append(RowOutcome(False, answer[1], answer[2], answer[3] or None))
        return outcomes

    def start_batch(
        self,
        batch_id: str,
        allowed_from: tuple[str, ...],
        rows: int,
        chunks: list[tuple[int, int]],
        queue_key: str,
        payloads: list[str],
        scheduled_for: float | None = None,
    ) -> str | int:
        """Publish a batch's chunk tasks (or, for a batch scheduled for later, put its chunks in the due
        index) and watch each chunk; the batch becomes `running`. One atomic step, from one of
        `allowed_from` (`accepting` to start, `paused` to resume), and only if the batch holds the `rows`
        the chunks were counted from.

        Returns 'ok', the state that refused, or the number of rows the batch holds when that differs
        (count the chunks again). A batch without chunks (every row was a replay or refused) is not kept."""
        start = scheduled_for or self.clock()
        members = [chunk_member(batch_id, a, b) for a, b in chunks]
        answer = self._start_batch(
            keys=[self.batch_key(batch_id), queue_key],
            args=[
                ",".join(allowed_from),
                rows,
                start + self.queued_grace_seconds,
                scheduled_for or "",
                *members,
                *payloads,
            ],
        )
        return int(answer[1]) if isinstance(answer, list) else answer

    # --- reading ---

    def get(self, message_id: str) -> Message | None:
        """The message, or None. An id not of our form (from a path: `<id>:log`) names none, and must not
        become the key of another record (see dispatcher/names.py)."""
        return self.get_many([message_id])[0] if is_message_id(message_id) else None

    def get_many(self, message_ids: list[str]) -> list[Message | None]:
        """The messages (None where there is none), in one pipelined round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for message_id in message_ids:
            pipe.hgetall(self.message_key(message_id))
            pipe.lrange(redis_keys.HISTORY_LIST.key(message_id), 0, -1)
            pipe.get(redis_keys.HISTORY.key(message_id))
        replies = pipe.execute()
        readings = zip(message_ids, replies[::3], replies[1::3], replies[2::3], strict=True)
        return [
            _message(message_id, record_names.readable(record), listed, log)
            for message_id, record, listed, log in readings
        ]

    def count_external_ids(self, account: str, external_ids: list[str]) -> int:
        """How many of `external_ids` already name a message of `account` (its record, or the external_id key
        of a message accepted before ids followed from external_ids: see create.lua)."""
        keys = [self.message_key(message_id_for(account, e)) for e in external_ids]
        keys += [self.external_key(account, e) for e in external_ids]
        return self.redis.exists(*keys) if external_ids else 0

    def find_by_external_id(self, account: str, external_id: str) -> Message | None:
        earlier = self.redis.get(self.external_key(account, external_id))
        return self.get(earlier or message_id_for(account, external_id))

    def batch(self, batch_id: str) -> dict[str, str] | None:
        """The batch's hash, or None; as for `get`, an id not of our form (`<id>:messages`) names none."""
        return (self.redis.hgetall(self.batch_key(batch_id)) or None) if is_batch_id(batch_id) else None

    def recent_batches(self, limit: int) -> list[tuple[str, dict[str, str]]]:
        """The newest `limit` batches that still exist, newest first, with their hashes: for the operators' console.

        A batch whose keys expired (its retention) is dropped from the index here, so the page reads at most
        `limit` plus what expired since the last read."""
        found: list[tuple[str, dict[str, str]]] = []
        start = 0
        while len(found) < limit:
            ids = self.redis.zrevrange(redis_keys.BATCHES.key(), start, start + limit - 1)
            if not ids:
                break
            pipe = self.redis.pipeline(transaction=False)
            for batch_id in ids:
                pipe.hgetall(self.batch_key(batch_id))
            gone = []
            for batch_id, batch in zip(ids, pipe.execute(), strict=True):
                if batch:
                    found.append((batch_id, batch))
                else:
                    gone.append(batch_id)
            if gone:
                self.redis.zrem(redis_keys.BATCHES.key(), *gone)
            start += len(ids) - len(gone)
        return found[:limit]

    def batch_rate(self, batch_id: str, window_seconds: int = 10) -> float:
        """Messages finished per second over the last `window_seconds` full seconds."""
        now = int(self.clock())
        seconds = [str(second) for second in range(now - window_seconds, now)]
        counts = self.redis.hmget(redis_keys.BATCH_RATE.key(batch_id), seconds)
        return sum(int(count or 0) for count in counts) / window_seconds

    def batch_message_ids(self, batch_id: str, start: int, stop: int) -> list[str]:
        """The batch's message ids from row `start` to row `stop` (excluded). The list holds them packed, as bytes
        (`unpacked_message_id`), which this client would otherwise decode as text."""
        key = redis_keys.BATCH_MESSAGES.key(batch_id)
        stored = self.redis.execute_command("LRANGE", key, start, stop - 1, **{NEVER_DECODE: True})
        return [unpacked_message_id(entry) for entry in stored]

    def statuses_of(self, message_ids: list[str]) -> list[str | None]:
        pipe = self.redis.pipeline(transaction=False)
        for message_id in message_ids:
            pipe.hget(self.message_key(message_id), "status")
        return pipe.execute()

    def counts(self) -> dict[str, int]:
        """Messages by status: every one that exists. Unfinished messages are counted in one hash; finished
        ones in a hash per UTC day they finished in, which expires with them (count_move, lua/lib/lifecycle.lua)."""
        today = int(self.clock() // DAY)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(redis_keys.COUNTS.key())
        for day in range(today - self.retention_seconds // DAY - 1, today + 1):
            pipe.hgetall(redis_keys.DAY_COUNTS.key(day))
        totals: dict[str, int] = {}
        for counts in pipe.execute():
            for status, count in counts.items():
                totals[status] = totals.get(status, 0) + int(count)
        return totals

    # --- sending ---

    def claim(self, message_id: str, take_over_expired: bool) -> Claim:
        """Move a message to `sending` with a lease, if nobody else holds it and its batch runs.

        A message whose lease ran out (its worker died mid-send) is taken over only when
        `take_over_expired`; otherwise the outcome is `lease_expired` and the caller decides.
        """
        now = self.clock()
        outcome, attempt, *fields = self._claim(
            keys=[self.message_key(message_id)],
            args=[
                message_id,
                now,
                now + self.lease_seconds,
                "1" if take_over_expired else "0",
                iso(now),
                self.limits,
                self._window_opens(now),
            ],
        )
        return Claim(message_id, outcome, int(attempt), *fields)

    def claim_group(self, batch_id: str, message_ids: list[str]) -> tuple[str, list[Claim]]:
        """Claim a batch's rows that are waiting, in one step. Returns the batch state, and the claims
        (none unless the state is `running`)."""
        now = self.clock()
        state, *claimed = self._claim_group(
            keys=[self.batch_key(batch_id)],
            args=[now, now + self.lease_seconds, iso(now), self.limits, self._window_opens(now), *message_ids],
        )
        return state, [Claim(message_id, "claimed", int(attempt), *rest) for message_id, attempt, *rest in claimed]

    def keep(
        self, claims: list[tuple[str, int]], locks: list[tuple[str, str]], held: list[str]
    ) -> tuple[set[str], set[str]]:
        """What a live worker holds, kept one lease longer in one round trip (see keep.lua): its claims
        (message id, attempt), its chunk locks (chunk member, token) and the members of the tasks it has
        received. Returns the claims and the locks that are no longer its own."""
        until = self.clock() + self.lease_seconds
        args = [until, int(self.lease_seconds * 1000), len(claims), *_flat(dict(claims)), len(locks)]
        args += [*_flat(dict(locks)), *held]
        lost_claims, lost_locks = self._keep(args=args)
        return set(lost_claims), set(lost_locks)

    def lock_chunk(self, member: str) -> str | None:
        """Take a batch chunk for one task; returns the lock's token, or None when another copy runs it. The
        chunk's deadline moves a lease ahead at once: if this worker dies before its keeper's first renewal,
        the chunk still comes back within a lease."""
        token = uuid.uuid4().hex
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(redis_keys.CHUNK_LOCK.key(member), token, nx=True, px=int(self.lease_seconds * 1000))
        pipe.zadd(redis_keys.PENDING.key(), {member: self.clock() + self.lease_seconds}, xx=True)
        acquired, _ = pipe.execute()
        return token if acquired else None

    def unlock_chunk(self, member: str, token: str, done: bool) -> bool:
        """Release a chunk's lock while it is still `token`'s; `done` also forgets the chunk (it has no rows
        left, or its batch stopped), in the same step. Returns False when the lock was no longer ours."""
        return bool(self._unlock(keys=[redis_keys.CHUNK_LOCK.key(member)], args=[token, member if done else ""]))

    def advance(
        self,
        message_id: str,
        status: str,
        allowed_from: tuple[str, ...],
        pending_deadline: float | None = None,
        detail: dict | None = None,
        attempt: int | None = None,
        **fields: str | float,
    ) -> str:
        """Move one message (see `Move`); returns 'ok' ('ok:paused' when this outcome auto-paused the message's
        sender), 'stale', 'missing' or the status that refused it."""
        return self.move([Move(message_id, status, allowed_from, pending_deadline, detail, attempt, fields=fields)])[0]

    def move(self, moves: list[Move]) -> list[str]:
        """Make many moves in one script call (a batch chunk's outcomes since its last record: their counters
        are written once); returns each one's answer, as `advance`'s, in order."""
        if not moves:
            return []
        now = self.clock()
        stamp = iso(now)
        args: list[bytes | str | float | int] = [now, stamp, self.auto_pause_window, self.auto_pause_ratio]
        for move in moves:
            args += [
                move.message_id,
                packed_message_id(move.message_id) if move.status == statuses.SENT else "",  # for the index
                move.status,
                ",".join(move.allowed_from),
                "" if move.pending_deadline is None else move.pending_deadline,
                history.step(move.status, now, move.detail),
                "" if move.attempt is None else move.attempt,
                "" if move.send_seconds is None else move.send_seconds,
                len(move.fields),
                *_flat(record_names.stored(move.fields)),
            ]
        return self._advance(keys=[self.message_key(move.message_id) for move in moves], args=args)

    # --- batches ---

    def set_batch_state(self, batch_id: str, state: str, allowed_from: tuple[str, ...]) -> str:
        return self._set_batch_state(keys=[self.batch_key(batch_id)], args=[state, ",".join(allowed_from)])

    def cancel(self, message_id: str) -> str:
        """A waiting message (queued, retrying, scheduled) → canceled; returns ok, missing or the status that
        refused it."""
        now = self.clock()
        return self._cancel(keys=[self.message_key(message_id)], args=[message_id, now, iso(now)])

    def cancel_batch(self, batch_id: str) -> tuple[str, int]:
        """Cancel the batch and every row still waiting, ROWS_PER_SCRIPT rows a call (none holds Redis long);
        returns ('ok', rows canceled) or (refusing state, 0). Calling it again for a canceled batch goes on
        with any row still waiting."""
        key = self.batch_key(batch_id)
        position, total = 0, 0
        while position >= 0:
            now = self.clock()
            outcome, *rest = self._cancel_batch(
                keys=[key, redis_keys.BATCH_MESSAGES.key(batch_id)], args=[now, iso(now), position, ROWS_PER_SCRIPT]
            )
            if outcome != "ok":
                return outcome, 0
            total += int(rest[0])
            position = int(rest[1])
        return "ok", total

    def _window_opens(self, now: float) -> float:
        return self.send_window.opens_at(now) if self.send_window else 0.0

    # --- pacing ---

    def pop_due(self, limit: int = 1000) -> list[str]:
        """Messages (and scheduled batch chunks) whose time has come, taken off the indexes for the caller
        to publish."""
        return self._pop_due(args=[self.clock(), limit])

    def hold_sender(self, provider: str, sender: str, seconds: float) -> None:
        """Back-pressure: no message of this sender starts for `seconds`, on any worker."""
        now = self.clock()
        self._hold_sender(keys=[redis_keys.PACE.key(sender_id(provider, sender or ""))], args=[now + seconds, now])

    def held(self) -> int:
        """Messages waiting for their pacing slot."""
        return self.redis.zcard(redis_keys.DUE.key())

    # --- reconciling ---

    def overdue(self, limit: int = 500) -> tuple[float, list[str]]:
        """Unfinished work past its deadline (a lost task, or a worker that died), and the time it was read."""
        now = self.clock()
        return now, self.redis.zrangebyscore(redis_keys.PENDING.key(), "-inf", now, start=0, num=limit)

    def rearm(self, members: list[str], read_at: float, deadline: float) -> list[str]:
        """Give overdue members a new deadline, those still overdue since `read_at` only (see rearm.lua);
        returns them: the ones to republish."""
        return self._rearm(args=[read_at, deadline, *members]) if members else []

    def expire_due(self, limit: int = 1000) -> tuple[int, int]:
        """Expire up to `limit` messages whose expires_at has come, wherever they wait (see expire_due.lua);
        returns (expired, taken off the index): a full slice means there may be more."""
        now = self.clock()
        expired, taken = self._expire_due(args=[now, iso(now), limit])
        return int(expired), int(taken)

    def watch_until(self, member: str, deadline: float, client: redis.Redis | None = None) -> None:
        (client or self.redis).zadd(redis_keys.PENDING.key(), {member: deadline}, xx=True)

    def forget_pending(self, member: str) -> None:
        self.redis.zrem(redis_keys.PENDING.key(), member)


def _message(message_id: str, record: dict, listed: list[str], log: str | None) -> Message | None:
    if not record:
        return None
    return Message(
        message_id=message_id,
        account=owner(record) or "",
        external_id=record["external_id"],
        recipient=record["recipient"],
        fingerprint=record["fingerprint"],
        status=record["status"],
        provider=record.get("provider", ""),
        provider_message_id=record.get("provider_message_id"),
        attempts=int(record.get("attempts", 0)),
        last_error=json.loads(record["last_error"]) if record.get("last_error") else None,
        created_at=shown(record["created_at"]),
        updated_at=shown(history.updated_at(record)),
        batch_id=record.get("batch_id"),
        history=history.entries(record, listed, log),
        sender=record.get("sender"),
        pool=record.get("pool"),
        expires_at=float(record["expires_at"]) if record.get("expires_at") else None,
        fallback_used=bool(record.get("fallback_used")),
    )


def _content_members(content: dict[str, str] | None) -> str:
    """The members a message's content has beside its body, as the JSON text the scripts splice in after it
    (see write_content in lua/lib/content.lua)."""
    items = (content or {}).items()
    return "".join(f",{json.dumps(name)}:{json.dumps(value, ensure_ascii=False)}" for name, value in items)


def _flat(fields: dict) -> list:
    return [item for pair in fields.items() for item in pair]
