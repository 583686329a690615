"""Accepting messages, one by one or as a batch: the idempotency rule and the records, independent of HTTP.

`external_id` is unique per account (dispatcher/accounts.py). The first request creates the message; a replay with the
same recipient and text gets that first message back; the same external_id with another
recipient or text is a conflict, because the caller almost certainly reused an id by mistake.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from dispatcher import statuses
from dispatcher.contacts import REFUSALS, ContactRefused, Contacts
from dispatcher.names import message_id_for, new_batch_id
from dispatcher.quotas import QuotaExceeded, Quotas
from dispatcher.store import MessageStore, NewMessage, QuotaRefused
from dispatcher.times import iso

# (queue key, task payload) for a message id, or for a batch chunk (batch id, first row, row after the last).
MessageTaskFor = Callable[[str], tuple[str, str]]
ChunkTaskFor = Callable[[str, int, int], tuple[str, str]]


class IdempotencyConflict(Exception):
    """The external_id already names a message with another recipient or text."""


@dataclass(frozen=True)
class Accepted:
    """The answer to a send: the message's id, its status now, when it was first queued, and whether it is a replay."""

    message_id: str
    status: str
    queued_at: str
    replayed: bool


@dataclass(frozen=True)
class RowAccepted:
    """A bulk row that has a message: a new one, or the one its external_id already named."""

    message_id: str
    replayed: bool


@dataclass(frozen=True)
class Route:
    """How a message goes out: the provider and the sender, or the sender pool whose member is chosen at the
    claim (provider and sender then empty), and any media or provider template."""

    provider: str
    sender: str = ""
    media: dict | None = None
    template: dict | None = None
    callback_url: str = ""  # where status events go (see dispatcher/outbox.py)
    pool: str = ""
    # the provider template sent instead of the text when the contact's 24-hour window is closed (contacts.py)
    fallback_template: dict | None = None
    # every (provider, sender) that may carry a pool's message: its members (see `carriers`)
    candidates: tuple[tuple[str, str], ...] = ()

    def fields(self) -> dict[str, str]:
        """The record's fields for this route (empty ones left out)."""
        values = {"provider": self.provider, "sender": self.sender, "pool": self.pool}
        values["callback_url"] = self.callback_url
        return {name: value for name, value in values.items() if value}

    def content_fields(self) -> dict[str, str]:
        """What the route adds to the message's content (dispatcher/redis_keys.py CONTENT), each as JSON text."""
        values = {
            "media": _json(self.media),
            "template": _json(self.template),
            "fallback_template": _json(self.fallback_template),
        }
        return {name: value for name, value in values.items() if value}

    @property
    def carriers(self) -> tuple[tuple[str, str], ...]:
        """Every (provider, sender) that may carry the message: the pool's members, or its one sender."""
        return self.candidates or ((self.provider, self.sender),)

    @property
    def content(self) -> str:
        """What the route adds to a message's content, for its fingerprint."""
        parts = [self.media, self.template] + ([self.fallback_template] if self.fallback_template else [])
        return json.dumps(parts, sort_keys=True) if self.media or self.template or self.fallback_template else ""


def _json(value: dict | None) -> str:
    return json.dumps(value, ensure_ascii=False) if value else ""


def fingerprint(recipient: str, body: str, content: str = "") -> str:
    """What a replay of the same external_id must match: 64 bits of a SHA-256 of the payload, as a signed
    decimal, which Redis keeps as an 8-byte integer in a compact record (every record keeps one for the
    retention; a conflict needs only that no two payloads of one external_id collide, and a caller who made two
    collide would only replay their own message)."""
    digest = hashlib.sha256(f"{recipient}\x00{body}\x00{content}".encode()).digest()
    return str(int.from_bytes(digest[:8], "big", signed=True))


def same_payload(stored: str, new: str) -> bool:
    """Whether a stored fingerprint is `new`'s. One stored before holds hex digits of the SHA-256 (all 64 of
    them, or 32 from when it was cut to 128 bits), whose first 16 are today's 64 bits."""
    if len(stored) in (32, 64):
        stored = str(int.from_bytes(bytes.fromhex(stored[:16]), "big", signed=True))
    return stored == new


def _kept(rows: Iterable[NewMessage], taken: list[NewMessage]) -> Iterator[NewMessage]:
    """`rows`, each also appended to `taken` as it is taken: the rows the store wrote, to pair with its outcomes."""
    for row in rows:
        taken.append(row)
        yield row


def new_message(account: str, external_id: str, recipient: str, body: str, route: Route | None = None) -> NewMessage:
    content = route.content if route else ""
    message_id = message_id_for(account, external_id)
    return NewMessage(message_id, external_id, recipient, body, fingerprint(recipient, body, content))


class MessageService:
    """Accepts messages into the store together with their tasks.

    The task payloads come from the Celery side (`tasks.envelope`); the store writes them in the
    same atomic step as the records, so every accepted message has a task. With `quotas`, an account's new
    messages count against its day (a replay gives its count back). With `contacts`, each new message meets its
    contact's rules in that same step (dispatcher/contacts.py).
    """

    def __init__(
        self,
        store: MessageStore,
        task_for: MessageTaskFor,
        chunk_task_for: ChunkTaskFor,
        chunk_size: int,
        quotas: Quotas | None = None,
        contacts: Contacts | None = None,
    ):
        self.store = store
        self.quotas = quotas
        self.contacts = contacts
        self.clock = store.clock
        self.task_for = task_for
        self.chunk_task_for = chunk_task_for
        self.chunk_size = chunk_size

    def accept(
        self,
        account: str,
        recipient: str,
        body: str,
        external_id: str,
        route: Route,
        send_at: float | None = None,
        expires_at: float | None = None,
        confirms_opt_out: bool = False,
    ) -> Accepted:
        """Accept one message; `send_at` (a timestamp) holds it until then; still unsent at `expires_at` (a
        timestamp), it becomes `expired`. A replay answers the first message, whatever its validity was.
        QuotaExceeded or ContactRefused when a quota or a contact's rule refuses it. `confirms_opt_out`: the
        confirmation OPT_OUT_REPLY sends the contact who just opted out, which its opt-out does not stop."""
        new = new_message(account, external_id, recipient, body, route)
        now = self.clock()
        scheduled_for = send_at if send_at and send_at > now else None
        queue, payload = self.task_for(new.message_id)
        quotas = self.quotas
        admission = quotas.admission(account) if quotas else None
        rules = self._rules(account, route, recipient, confirms_opt_out)
        fields = route.fields() | ({"opt_out_reply": "1"} if confirms_opt_out else {})
        try:
            created, stored_id = self.store.create(
                new, account, now, queue, payload, fields, scheduled_for,
                (admission.keys, admission.args) if admission else None, rules=rules, expires_at=expires_at,
                content=route.content_fields(),
            )  # fmt: skip
        except QuotaRefused as refused:  # the script refuses only what an admission or the rules asked it to check
            if refused.code in REFUSALS and self.contacts is not None:
                raise self.contacts.refusal(refused.code, account) from None
            if quotas is None:
                raise
            raise quotas.refusal(refused.code, refused.figure) from None
        if created:
            status = statuses.SCHEDULED if scheduled_for else statuses.QUEUED
            return Accepted(new.message_id, status, iso(now), replayed=False)
        existing = self.store.get(stored_id)
        if existing is None or not same_payload(existing.fingerprint, new.fingerprint):
            raise IdempotencyConflict(stored_id)
        return Accepted(existing.message_id, existing.status, existing.created_at, replayed=True)

    def accept_batch(
        self,
        account: str,
        rows: Iterable[NewMessage],
        route: Route,
        send_at: float | None = None,
        expires_at: float | None = None,
        most: int | None = None,
    ) -> tuple[str | None, list[RowAccepted | IdempotencyConflict | ContactRefused]]:
        """Accept validated rows as one batch; returns the batch id and, per row, its message, a conflict or the
        contact's rule that refused it.

        `rows` may be a generator that validates them as they are taken, with `most` how many it can yield at
        the most (the request's rows): those are counted against the account's day before the first is
        written, and the store writes each slice while the next is validated. What turns out not to be a new
        message is given back. Near the quota, every row is validated first and only the new ones counted.

        Everything is durable when this returns: the records, then the chunk tasks (one per `chunk_size` rows,
        not one per row) in one more round trip. A request that dies between the two leaves a batch the
        reconciler starts (`start_accepted`), so a replay of it finds every row already on its way. When no row
        creates a message (a replayed request), the batch id is the one the replayed rows belong to (None if
        they belong to several, or to none). Rows still unsent at `expires_at` (a timestamp) become `expired`.
        """
        batch_id = new_batch_id()
        now = self.clock()
        scheduled_for = send_at if send_at and send_at > now else None
        counted = None if most is None else self._count_ahead(account, most)
        if counted is None:  # every row validated first, and only the new ones counted
            taken = list(rows)
            counted = self._count(account, [row.external_id for row in taken])
            rows = taken
        else:
            taken = []
            rows = _kept(rows, taken)
        rules = self._rules(account, route)
        outcomes = self.store.create_batch(
            batch_id, account, rows, now, route.fields(), scheduled_for, rules=rules, expires_at=expires_at,
            content=route.content_fields(),
        )  # fmt: skip
        self._give_back(account, counted - sum(outcome.created for outcome in outcomes))
        results: list[RowAccepted | IdempotencyConflict | ContactRefused] = []
        for row, outcome in zip(taken, outcomes, strict=True):
            if outcome.refused and self.contacts is not None:
                results.append(self.contacts.refusal(outcome.refused, account))
            elif outcome.created:
                results.append(RowAccepted(outcome.message_id, replayed=False))
            elif same_payload(outcome.fingerprint, row.fingerprint):
                results.append(RowAccepted(outcome.message_id, replayed=True))
            else:
                results.append(IdempotencyConflict(outcome.message_id))
        created = sum(outcome.created for outcome in outcomes)
        if created:
            self._start(batch_id, (statuses.ACCEPTING,), created, scheduled_for)
            return batch_id, results
        earlier = {
            outcome.batch_id
            for outcome, result in zip(outcomes, results, strict=True)
            if isinstance(result, RowAccepted)
        }
        return (earlier.pop() if len(earlier) == 1 else None), results

    def _rules(self, account: str, route: Route, recipient: str = "", confirms_opt_out: bool = False) -> str:
        if self.contacts is None:
            return ""
        return self.contacts.rules(
            account, route.carriers, bool(route.template), bool(route.fallback_template), recipient, confirms_opt_out
        )

    def _count_ahead(self, account: str, most: int) -> int | None:
        """Count `most` messages against the account's day before any is validated; None when they would not
        all fit (then the rows are validated first, and only the new ones are counted: see `_count`)."""
        if self.quotas is None:
            return 0
        try:
            self.quotas.take_messages(account, most)
        except QuotaExceeded:
            return None
        return most

    def _count(self, account: str, external_ids: list[str]) -> int:
        """Count a bulk request's messages against the account's day; returns how many were counted.

        Over the quota, the replays among them are not counted: a caller retrying a request that timed out
        gets its messages back, never a 429 for messages that exist. QuotaExceeded when the new ones are
        still too many.
        """
        if self.quotas is None:
            return 0
        try:
            self.quotas.take_messages(account, len(external_ids))
            return len(external_ids)
        except QuotaExceeded:
            new = len(external_ids) - self.store.count_external_ids(account, external_ids)
            self.quotas.take_messages(account, new)
            return new

    def _give_back(self, account: str, messages: int) -> None:
        """Give back what `_count` counted for rows that turned out to be replays."""
        if self.quotas is not None and messages > 0:
            self.quotas.give_back(account, messages)

    def task_for_member(self, member: str) -> tuple[str, str]:
        """The task of a member of the store's indexes (a message id, or `chunk:<batch>:<start>:<stop>`), as
        (queue key, payload): what the reconciler republishes and the workers release when due."""
        if member.startswith("chunk:"):
            _, batch_id, start, stop = member.split(":")
            return self.chunk_task_for(batch_id, int(start), int(stop))
        return self.task_for(member)

    def pause_batch(self, batch_id: str) -> str:
        """Pause a batch: its chunks stop claiming within a second. Returns 'ok' or the state that refused."""
        return self.store.set_batch_state(batch_id, statuses.PAUSED, statuses.batch_sources(statuses.PAUSED))

    def cancel_batch(self, batch_id: str) -> tuple[str, int]:
        """Cancel a batch and every row still waiting: ('ok', how many were canceled now) or (the state that
        refused, 0)."""
        return self.store.cancel_batch(batch_id)

    def resume_batch(self, batch_id: str) -> str:
        """Resume a paused batch: `running` and a chunk task for every `chunk_size` rows, in one step (chunks
        skip the rows already sent). Returns 'ok' or the state that refused."""
        return self._start(batch_id, (statuses.PAUSED,))

    def start_accepted(self, batch_id: str) -> str:
        """Start a batch whose request died after writing its rows (the reconciler's part): 'ok', or the
        state that refused (`running`: the request started it after all; `missing`: nothing to start)."""
        batch = self.store.batch(batch_id) or {}
        scheduled_for = float(batch.get("scheduled_for") or 0)
        return self._start(
            batch_id, (statuses.ACCEPTING,), None, scheduled_for if scheduled_for > self.clock() else None
        )

    def _start(
        self, batch_id: str, allowed_from: tuple[str, ...], rows: int | None = None, scheduled_for: float | None = None
    ) -> str:
        """Publish the batch's chunks for its `rows` (read from the store when not known), atomically
        with its move to `running`; counts again if rows joined meanwhile."""
        for _ in range(3):
            if rows is None:
                rows = int((self.store.batch(batch_id) or {}).get("total", 0))
            chunks = [(start, min(start + self.chunk_size, rows)) for start in range(0, rows, self.chunk_size)]
            tasks = [self.chunk_task_for(batch_id, start, stop) for start, stop in chunks]
            queue = tasks[0][0] if tasks else ""
            answer = self.store.start_batch(
                batch_id, allowed_from, rows, chunks, queue, [payload for _, payload in tasks], scheduled_for
            )
            if not isinstance(answer, int):
                return answer
            rows = answer
        return "busy"
