"""The callback outbox: status events waiting to be POSTed to the caller, in Redis.

Events are written by the same Lua scripts that change a message's status (`lua/lib/outbox.lua`,
`report_status`), so a status change and its event are one atomic step: no change without its
event, no event without its change. Each event waits in a chain (a list): a message's events share
one chain and are delivered in order, one at a time, by one task holding the chain's lock.

Its keys (`dispatch:cb:...`, and `dispatch:seen:...` for replies) are listed in `dispatcher/redis_keys.py`.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

import redis

from dispatcher import redis_keys, scripts


@dataclass(frozen=True)
class Pending:
    """The first event of a chain, as read (`raw` is what settling it compares against)."""

    chain: str
    raw: str
    url: str
    event: dict
    attempts: int
    first_attempt_at: float | None
    account: str | None = None  # whose event it is: its signing secret, who sees it if it dies

    @property
    def event_id(self) -> str:
        return self.event["event_id"]


class Outbox:
    def __init__(self, client: redis.Redis, retention_seconds: int):
        self.redis = client
        self.retention_seconds = retention_seconds
        self._take_chains = scripts.register(client, "take_chains", retention_seconds)
        self._settle_head = scripts.register(client, "settle_head", retention_seconds)
        self._revive = scripts.register(client, "revive", retention_seconds)
        self._receive = scripts.register(client, "receive", retention_seconds)
        self._unlock = scripts.register(client, "unlock", retention_seconds)

    # --- taking work ---

    def take_due(self, lease_seconds: float, limit: int = 500) -> list[str]:
        """Chains whose time has come, leased to the caller for `lease_seconds`."""
        return self._take_chains(args=[time.time(), limit, lease_seconds])

    def lock(self, chain: str, seconds: float) -> str | None:
        """Take the chain for one task; returns the lock's token, or None when another task has it."""
        token = uuid.uuid4().hex
        acquired = self.redis.set(redis_keys.CALLBACK_LOCK.key(chain), token, nx=True, px=int(seconds * 1000))
        return token if acquired else None

    def unlock(self, chain: str, token: str) -> None:
        """Release the chain, only if the lock is still this task's (compare and delete in one step: a lock
        that expired and was taken by another task meanwhile stays theirs)."""
        self._unlock(keys=[redis_keys.CALLBACK_LOCK.key(chain)], args=[token, ""])

    def due_now(self, chain: str) -> None:
        """Hand the chain back for a new task to go on with (its lock is released after this)."""
        self.redis.zadd(redis_keys.CALLBACKS_DUE.key(), {chain: time.time()}, xx=True)

    def head(self, chain: str) -> Pending | None:
        raw = self.redis.lindex(redis_keys.CALLBACK_CHAIN.key(chain), 0)
        if raw is None:
            return None
        record = json.loads(raw)
        return Pending(
            chain,
            raw,
            record["url"],
            record["event"],
            record.get("attempts", 0),
            record.get("first_attempt_at"),
            record.get("account"),
        )

    # --- settling the first event ---

    def delivered(self, pending: Pending, next_due: float) -> int:
        """Take the delivered event off its chain; returns how many remain (-1: the chain changed)."""
        return self._settle(pending, "delivered", "", next_due)

    def retry_at(self, pending: Pending, when: float, error: str) -> int:
        now = time.time()
        record = {
            "url": pending.url,
            "attempts": pending.attempts + 1,
            "first_attempt_at": pending.first_attempt_at or now,
            "last_attempt_at": now,
            "next_attempt_at": when,
            "last_error": error,
            **self._owner(pending),
            "event": pending.event,
        }
        return self._settle(pending, "retry", json.dumps(record, ensure_ascii=False), when)

    def dead(self, pending: Pending, error: str, next_due: float) -> int:
        now = time.time()
        record = {
            "chain": pending.chain,
            "url": pending.url,
            "attempts": pending.attempts + 1,
            "first_attempt_at": pending.first_attempt_at or now,
            "died_at": now,
            "last_error": error,
            **self._owner(pending),
            "event": pending.event,
        }
        return self._settle(pending, "dead", json.dumps(record, ensure_ascii=False), next_due)

    @staticmethod
    def _owner(pending: Pending) -> dict:
        return {"account": pending.account} if pending.account else {}

    def _settle(self, pending: Pending, outcome: str, record: str, when: float) -> int:
        now = time.time()
        return self._settle_head(
            keys=[redis_keys.CALLBACK_CHAIN.key(pending.chain)],
            args=[
                pending.chain,
                outcome,
                pending.raw,
                record,
                when,
                pending.event_id,
                now,
                now - self.retention_seconds,
            ],
        )

    # --- operators ---

    def dead_page(self, offset: int, limit: int, account: str | None = None) -> tuple[list[dict], int | None]:
        """Dead deliveries of `account` (None: everyone's), newest first, from `offset`; returns the page and
        the offset of the next one."""
        index = redis_keys.ACCOUNT_DEAD_BY_TIME.key(account) if account else redis_keys.DEAD_BY_TIME.key()
        ids = self.redis.zrevrange(index, offset, offset + limit)
        page = ids[:limit]
        records = self.redis.hmget(redis_keys.DEAD.key(), page) if page else []
        deliveries = [json.loads(record) for record in records if record]
        return deliveries, (offset + limit if len(ids) > limit else None)

    def revive(self, event_id: str, account: str | None = None) -> str | None:
        """Put a dead delivery (of `account`; None: anyone's) back at the end of its chain; returns the chain,
        or None if there is none."""
        return self._revive(args=[event_id, time.time(), account or ""]) or None

    def waiting(self) -> int:
        """Chains with events still to deliver."""
        return self.redis.zcard(redis_keys.CALLBACKS_DUE.key())

    def dead_count(self) -> int:
        return self.redis.zcard(redis_keys.DEAD_BY_TIME.key())

    # --- replies ---

    def receive(
        self, event: dict, chain: str, default_url: str, in_reply_to: str, remember_seconds: int, contact: str
    ) -> tuple[str, str, list[str]]:
        """Queue a message.received event (once per reply), and apply what the reply says of its contact
        (`contact`: dispatcher/contacts.py `reply_contact`); returns (outcome, answered message id, the accounts
        whose opt-out list it changed). `in_reply_to`: the provider's id of the message it answers, or ''."""
        outcome, answered, *changed = self._receive(
            keys=[redis_keys.REPLY_SEEN.key(event["event_id"])],
            args=[
                json.dumps(event, ensure_ascii=False),
                default_url,
                chain,
                time.time(),
                remember_seconds,
                contact,
                event["provider"],
                in_reply_to,
            ],
        )
        return outcome, answered, changed
