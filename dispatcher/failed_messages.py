"""Failed messages for operators: listed page by page, retried one by one or per batch, without scanning Redis.

Celery and Flower have no "retry failed work" button (BullMQ and bull-board do), so we keep our own:
every move to `failed` adds the message to `dispatch:failed`, a sorted set by the time it failed, and
every move out of it (a retry) takes it off (`lua/lib/lifecycle.lua`, `move`). A page walks that index in time
order from a cursor, reading each entry's few fields in one pipelined round trip per slice, and
stops after a bounded number of entries, so a request costs the same with 100 or 100,000 failures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from dispatcher import redis_keys
from dispatcher.store import MessageStore
from dispatcher.times import iso

SLICE = 500
# Entries examined per request at most: a selective filter may give a short page (follow next_cursor).
EXAMINE_MAX = 5000


# What a page reads of each failed message: whether it still exists, its account (under either name:
# dispatcher/accounts.py, owner), then what FailedFilter.matches compares.
_FIELDS_READ = ("status", "account", "key_id", "batch_id", "provider", "sender", "last_error")


@dataclass(frozen=True)
class FailedFilter:
    batch_id: str | None = None
    provider: str | None = None
    sender: str | None = None
    error_code: str | None = None
    since: float | None = None  # failed at or after (unix seconds)
    until: float | None = None  # failed at or before

    def matches(self, fields: list[str | None]) -> bool:
        batch_id, provider, sender, last_error = fields
        if self.batch_id and batch_id != self.batch_id:
            return False
        if self.provider and provider != self.provider:
            return False
        if self.sender and (sender or "") != self.sender:
            return False
        if self.error_code:
            code = str(json.loads(last_error).get("code", "")) if last_error else ""
            return code == self.error_code
        return True


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last entry examined (its score, then its id, as the index orders them)."""

    score: float
    member: str

    def __str__(self) -> str:
        return f"{self.score!r}|{self.member}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        score, _, member = text.partition("|")
        if not member:
            raise ValueError(text)
        return cls(float(score), member)


class FailedMessages:
    def __init__(self, store: MessageStore):
        self.store = store
        self.redis = store.redis
        self._retry = store.script("retry")

    def page(
        self, account: str | None, wanted: FailedFilter, limit: int, cursor: Cursor | None = None
    ) -> tuple[list[str], Cursor | None]:
        """Failed message ids of this account (None: of every account) matching `wanted`, oldest failure
        first, and the next cursor."""
        top = wanted.until if wanted.until is not None else "+inf"
        score: float | str = cursor.score if cursor else (wanted.since if wanted.since is not None else "-inf")
        found: list[str] = []
        examined = 0
        last: Cursor | None = cursor
        while len(found) < limit and examined < EXAMINE_MAX:
            entries = self.redis.zrangebyscore(redis_keys.FAILED.key(), score, top, start=0, num=SLICE, withscores=True)
            # The slice starts at `score` inclusive: skip what the cursor already covered (ties come in id order).
            fresh = [(m, s) for m, s in entries if last is None or s != last.score or m > last.member]
            if not fresh:
                break
            pipe = self.redis.pipeline(transaction=False)
            for member, _ in fresh:
                pipe.hmget(self.store.message_key(member), *_FIELDS_READ)
            expired = []
            for (member, entry_score), (exists, account_now, account_before, *fields) in zip(
                fresh, pipe.execute(), strict=True
            ):
                examined += 1
                last = Cursor(entry_score, member)
                if exists is None:
                    expired.append(member)  # its record expired (MESSAGE_RETENTION_DAYS)
                elif account in (None, account_now or account_before) and wanted.matches(fields):
                    found.append(member)
                    if len(found) == limit:
                        break
            if expired:
                self.redis.zrem(redis_keys.FAILED.key(), *expired)
            if len(entries) < SLICE and len(found) < limit:
                return found, None  # the end of the index
            assert last is not None  # `fresh` was not empty: the loop above examined at least one entry
            score = last.score
        return found, last

    def keep_newest(self, keep: int | None) -> int:
        """JOB_REMOVE_ON_FAIL (the legacy system's setting): list only the newest `keep` failures (None: all). The
        records stay (MESSAGE_RETENTION_DAYS); only the listing forgets. Returns how many it forgot."""
        if keep is None:
            return 0
        return self.redis.zremrangebyrank(redis_keys.FAILED.key(), 0, -(keep + 1))

    def retry(self, message_id: str, task_for, grace_seconds: int) -> str:
        """failed → queued with its task (`task_for(id)` gives (queue key, task payload)); returns ok, missing,
        already_sent or the status that refused it."""
        return self.retry_many([message_id], task_for, grace_seconds)[0]

    def retry_many(self, message_ids: list[str], task_for, grace_seconds: int) -> list[str]:
        """`retry` for many messages in one pipelined round trip (a batch's failed rows); `task_for(id)` gives
        each one's (queue key, task payload). Returns each outcome, in order."""
        now = self.store.clock()
        pipe = self.redis.pipeline(transaction=False)
        for message_id in message_ids:
            queue_key, task_payload = task_for(message_id)
            self._retry(
                keys=[self.store.message_key(message_id), queue_key],
                args=[message_id, now, iso(now), now + grace_seconds, task_payload],
                client=pipe,
            )
        return pipe.execute() if message_ids else []

    def failed_in_batch(self, batch_id: str, total: int) -> list[str]:
        """The batch's failed rows, read in slices of its row list."""
        failed: list[str] = []
        for start in range(0, total, SLICE):
            ids = self.store.batch_message_ids(batch_id, start, start + SLICE)
            failed += [i for i, status in zip(ids, self.store.statuses_of(ids), strict=True) if status == "failed"]
        return failed
