"""Senders (a provider's sending numbers or instances): their pace (the provider's default, or the
sender's own rate, burst and daily cap), their state (active, or paused by an operator or by
auto-pause), kept in Redis where the claim scripts read them (`pace` in lua/lib/pacing.lua).

A sender's keys (`dispatcher/redis_keys.py`: SENDER, SENDER_HELD, SENDER_OUTCOMES, PACE, SENT_TODAY) are named
by its `sender_id`.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from urllib.parse import unquote

import redis

from dispatcher import redis_keys, scripts

log = logging.getLogger(__name__)
# How many held or reserved messages one script call moves: no call walks an unbounded set.
MOVED_PER_CALL = 1000
# How a pause made by the provider's own report of a lost connection begins its reason: only such a pause is
# lifted when the provider reports the connection back (an operator's pause stays until an operator lifts it).
DISCONNECTED = "disconnected"


def sender_id(provider: str, sender: str) -> str:
    """`<provider>:<sender>` as every key of the sender spells it, with the sender's `%` and `:` percent-encoded.

    Senders come from requests (a bridge or the mock take any name, and Twilio's own form of a number is
    `whatsapp:+1...`), and their keys are built by appending to this id: unencoded, a sender named `x:held`
    would own the key of x's held set (a WRONGTYPE error for both). Any other name is left as it is, so
    the keys that exist keep their names. The Lua scripts build the same id (`sender_id` in lua/lib/senders.lua).
    """
    return f"{provider}:{sender.replace('%', '%25').replace(':', '%3A')}"


@dataclass(frozen=True)
class SenderPace:
    provider: str
    sender: str
    rate_per_second: float
    burst: int
    daily_cap: int  # 0: none
    warmup_start: int  # 0: no warm-up; else the first day's cap, growing by warmup_growth a day
    warmup_growth: float
    sent_today: int  # UTC day
    state: str  # active | paused
    paused_reason: str | None
    own: bool  # the sender has settings of its own, not only its provider's defaults
    current_wait_seconds: float  # how long a new message would wait for a slot now
    fallback_template: dict | None = None  # sent instead of free text outside the 24-hour window (contacts.py)


class SenderRegistry:
    def __init__(self, client: redis.Redis, defaults: dict[str, tuple[float, int, float]]):
        self.redis = client
        self.defaults = defaults
        self._resume = scripts.register(client, "resume_sender")
        self._fail_over = scripts.register(client, "fail_over")
        self._release_pool = scripts.register(client, "release_pool")

    def get(self, provider: str, sender: str) -> SenderPace:
        return self.get_many([(provider, sender)])[0]

    def get_many(self, senders: list[tuple[str, str]]) -> list[SenderPace]:
        """Each (provider, sender)'s pace, in one round trip whatever their number."""
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        for provider, sender in senders:
            pipe.hgetall(redis_keys.SENDER.key(sender_id(provider, sender)))
            pipe.get(redis_keys.PACE.key(sender_id(provider, sender)))
            pipe.get(redis_keys.SENT_TODAY.key(sender_id(provider, sender), int(now // 86400)))
        read = iter(pipe.execute())
        return [self._pace(provider, sender, next(read), next(read), next(read), now) for provider, sender in senders]

    def _pace(
        self, provider: str, sender: str, own: dict, next_free: str | None, sent_today: str | None, now: float
    ) -> SenderPace:
        """A sender's pace from what Redis holds of it: its own settings, its limiter, today's count."""
        rate, burst, _ = self.defaults.get(provider, (0.0, 1, 0.0))
        rate, burst = float(own.get("rate", rate)), int(own.get("burst", burst))
        wait = 0.0
        if next_free:
            wait = max(0.0, float(next_free) - ((burst - 1) / rate if rate > 0 else 0) - now)
        return SenderPace(
            provider=provider,
            sender=sender,
            rate_per_second=rate,
            burst=burst,
            daily_cap=int(own.get("daily_cap", 0)),
            warmup_start=int(own.get("warmup_start", 0)),
            warmup_growth=float(own.get("warmup_growth", 1.5)),
            sent_today=int(sent_today or 0),
            state=own.get("state", "active"),
            paused_reason=own.get("paused_reason"),
            own=bool(own.keys() & {"rate", "burst", "daily_cap", "warmup_start"}),
            current_wait_seconds=round(wait, 3),
            fallback_template=json.loads(own["fallback_template"]) if own.get("fallback_template") else None,
        )

    def set(self, provider: str, sender: str, fallback_template: dict | None = None, **pace: float) -> SenderPace:
        """Store the sender's own settings among rate, burst, daily_cap, warmup_start, warmup_growth, and its
        fallback template (an empty one removes it)."""
        key = redis_keys.SENDER.key(sender_id(provider, sender))
        if pace:
            self.redis.hset(key, mapping=pace)
        if fallback_template:
            self.redis.hset(key, "fallback_template", json.dumps(fallback_template, ensure_ascii=False))
        elif fallback_template is not None:
            self.redis.hdel(key, "fallback_template")
        return self.get(provider, sender)

    def pause(self, provider: str, sender: str, reason: str) -> SenderPace:
        self.redis.hset(
            redis_keys.SENDER.key(sender_id(provider, sender)), mapping={"state": "paused", "paused_reason": reason}
        )
        self.fail_over(provider, sender)
        return self.get(provider, sender)

    def resume(self, provider: str, sender: str) -> tuple[SenderPace, int]:
        """Resume the sender; returns it and how many held messages were released (its own, and those of
        the pools it is a member of, which it may now take)."""
        released = self._drain(self._resume, redis_keys.SENDER.key(sender_id(provider, sender)))
        for pool in self.redis.smembers(redis_keys.SENDER_POOLS.key(sender_id(provider, sender))):
            released += self.release_pool(pool)
        return self.get(provider, sender), released

    def connection_changed(self, provider: str, sender: str, connected: bool, state: str, reason: str = "") -> str:
        """The provider reports the sender's connection (Evolution's connection.update): a lost one pauses it (its
        pool messages go to other members), one back lifts that pause. Returns paused, resumed or same."""
        now = self.get(provider, sender)
        if not connected:
            if now.state == "paused":
                return "same"
            why = f"{DISCONNECTED}: {provider} reports the connection {state}" + (f" ({reason})" if reason else "")
            log.warning("sender %s/%s paused: %s", provider, sender, why)
            self.pause(provider, sender, why)
            return "paused"
        if now.state == "paused" and (now.paused_reason or "").startswith(DISCONNECTED):
            log.warning("sender %s/%s resumed: %s reports the connection open", provider, sender, provider)
            self.resume(provider, sender)
            return "resumed"
        return "same"

    def fail_over(self, provider: str, sender: str) -> int:
        """The sender fell (paused by hand or by auto-pause, or disconnected): the pool messages waiting for
        its slots go back to their pools now, and their claim gives them another member. Returns how many."""
        moved = self._drain(self._fail_over, redis_keys.SENDER_RESERVED.key(sender_id(provider, sender)))
        pools = sorted(self.redis.smembers(redis_keys.SENDER_POOLS.key(sender_id(provider, sender))))
        if pools:
            log.warning(
                "pool member %s/%s fell: %d waiting message(s) go to the other members of %s",
                provider,
                sender,
                moved,
                ", ".join(pools),
            )
        for pool in pools:
            if not self.pool_can_send(pool):
                log.warning("pool %s has no member left that can send: its messages are held", pool)
        return moved

    def pool_can_send(self, pool: str) -> bool:
        """Whether some member of the pool is not paused."""
        members = json.loads(self.redis.hget(redis_keys.POOL.key(pool), "members") or "[]")
        pipe = self.redis.pipeline(transaction=False)
        for member in members:
            pipe.hget(redis_keys.SENDER.key(sender_id(member["provider"], member["sender"])), "state")
        return any(state != "paused" for state in pipe.execute())

    def release_pool(self, pool: str) -> int:
        """Let the pool's held messages try again (a member came back, or was added): how many were released."""
        return self._drain(self._release_pool, redis_keys.POOL_HELD.key(pool))

    def _drain(self, script, key: str) -> int:
        """Run a moving script (resume_sender, fail_over, release_pool) on `key` until nothing is left to move."""
        moved, left = 0, 1
        while left:
            count, left = script(keys=[key], args=[time.time(), MOVED_PER_CALL])
            moved += int(count)
        return moved

    def known(self, configured: dict[str, tuple[str, ...]]) -> list[tuple[str, str]]:
        """Every sender worth showing: the configured ones, those with their own settings, and those that
        have sent (a limiter in Redis) — for providers such as the mock that accept any sender."""
        found = {(provider, sender) for provider, senders in configured.items() for sender in senders}
        for prefix in (redis_keys.SENDER.prefix, redis_keys.PACE.prefix):
            for key in self.redis.scan_iter(f"{prefix}*", count=500):
                provider, _, sender = key[len(prefix) :].partition(":")
                # An encoded sender has no colon: one after it starts a key of that sender's (`:held`, ...).
                if provider in configured and ":" not in sender:
                    found.add((provider, unquote(sender)))
        return sorted(found)
