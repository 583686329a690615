"""Sender pools: a campaign spread over several numbers, each contact kept on one number, a fallen number's
messages moved to the others.

A pool names its members (any configured provider and sender, providers may be mixed) and their weights. A
message sent through a pool is given its member at its claim (`route_pool` in lua/lib/pools.lua): the member
whose own pace, daily cap and warm-up let it send soonest, so a pool of three numbers at 5/s sends about 15/s;
among members free at once, the weights share the messages. With `sticky`, a recipient keeps the member that
last wrote to them (per account and pool, POOL_STICKY_DAYS) while it can send. A member that falls hands its
waiting messages back (`SenderRegistry.fail_over`); when no member can send, the pool holds them until one
can (`SenderRegistry.resume`, or a member added here).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import redis

from dispatcher import redis_keys
from dispatcher.message_rules import InvalidInput
from dispatcher.provider_setup import ProviderCatalog
from dispatcher.senders import SenderRegistry, sender_id


@dataclass(frozen=True)
class Member:
    provider: str
    sender: str
    weight: int = 1

    @property
    def id(self) -> str:
        return sender_id(self.provider, self.sender)


@dataclass(frozen=True)
class Pool:
    name: str
    members: tuple[Member, ...]
    sticky: bool = False


@dataclass(frozen=True)
class MemberView:
    """A member as the pool's view shows it: its sender's pace and state, and what it sent for the pool."""

    provider: str
    sender: str
    weight: int
    state: str  # active | paused
    paused_reason: str | None
    rate_per_second: float
    daily_cap: int
    sent_today: int
    current_wait_seconds: float
    sent: int  # messages it sent for this pool


@dataclass(frozen=True)
class PoolView:
    name: str
    sticky: bool
    members: list[MemberView]
    held: int  # messages waiting because no member can send


class PoolRegistry:
    def __init__(self, client: redis.Redis, senders: SenderRegistry, catalog: ProviderCatalog):
        self.redis = client
        self.senders = senders
        self.catalog = catalog

    def get(self, name: str) -> Pool | None:
        stored = self.redis.hgetall(redis_keys.POOL.key(name))
        if not stored:
            return None
        members = tuple(_member(stored_member) for stored_member in json.loads(stored["members"]))
        return Pool(name, members, stored.get("sticky") == "1")

    def names(self) -> list[str]:
        return sorted(self.redis.smembers(redis_keys.POOLS.key()))

    def save(self, pool: Pool) -> bool:
        """Create or replace the pool; returns whether it is new. Members it gains can take what it held."""
        before = self.get(pool.name)
        gone = {member.id for member in before.members} - {member.id for member in pool.members} if before else set()
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(
            redis_keys.POOL.key(pool.name),
            mapping={
                # Each with its sender id, so a claim does not spell it anew for every member it weighs.
                "members": json.dumps([{**asdict(member), "id": member.id} for member in pool.members]),
                "sticky": "1" if pool.sticky else "0",
                "saved_at": time.time(),
            },
        )
        pipe.sadd(redis_keys.POOLS.key(), pool.name)
        for member in pool.members:
            pipe.sadd(redis_keys.SENDER_POOLS.key(member.id), pool.name)
        for member_id in gone:
            pipe.srem(redis_keys.SENDER_POOLS.key(member_id), pool.name)
        pipe.execute()
        self.senders.release_pool(pool.name)
        return before is None

    def delete(self, name: str) -> str:
        """'ok', 'missing', or 'holds_messages' (what it holds would have no member left to go to)."""
        pool = self.get(name)
        if pool is None:
            return "missing"
        if self.redis.scard(redis_keys.POOL_HELD.key(name)):
            return "holds_messages"
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(redis_keys.POOL.key(name), redis_keys.POOL_PICKS.key(name), redis_keys.POOL_SENT.key(name))
        pipe.srem(redis_keys.POOLS.key(), name)
        for member in pool.members:
            pipe.srem(redis_keys.SENDER_POOLS.key(member.id), name)
        pipe.execute()
        return "ok"

    def view(self, pool: Pool) -> PoolView:
        sent = self.redis.hgetall(redis_keys.POOL_SENT.key(pool.name))
        paces = self.senders.get_many([(member.provider, member.sender) for member in pool.members])
        members = []
        for member, pace in zip(pool.members, paces, strict=True):
            members.append(
                MemberView(
                    provider=member.provider,
                    sender=member.sender,
                    weight=member.weight,
                    state=pace.state,
                    paused_reason=pace.paused_reason,
                    rate_per_second=pace.rate_per_second,
                    daily_cap=pace.daily_cap,
                    sent_today=pace.sent_today,
                    current_wait_seconds=pace.current_wait_seconds,
                    sent=int(sent.get(member.id, 0)),
                )
            )
        held = self.redis.scard(redis_keys.POOL_HELD.key(pool.name))
        return PoolView(pool.name, pool.sticky, members, int(held))

    def held(self) -> int:
        """Messages held by every pool (no member could send them)."""
        pipe = self.redis.pipeline(transaction=False)
        for name in self.names():
            pipe.scard(redis_keys.POOL_HELD.key(name))
        return sum(pipe.execute())

    def gauges(self) -> list[tuple[str, int, list[tuple[Member, int, bool]]]]:
        """For /metrics, in three round trips whatever the pools: each pool's name, what it holds, and each
        member with what it sent for the pool and whether it can send (not paused)."""
        names = self.names()
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hget(redis_keys.POOL.key(name), "members")
            pipe.hgetall(redis_keys.POOL_SENT.key(name))
            pipe.scard(redis_keys.POOL_HELD.key(name))
        read = pipe.execute()
        pools = []
        for index, name in enumerate(names):
            members_json, sent, held = read[3 * index : 3 * index + 3]
            members = [_member(stored_member) for stored_member in json.loads(members_json or "[]")]
            pools.append((name, int(held), members, sent))
        pipe = self.redis.pipeline(transaction=False)
        for _, _, members, _ in pools:
            for member in members:
                pipe.hget(redis_keys.SENDER.key(member.id), "state")
        states = iter(pipe.execute())
        return [
            (name, held, [(member, int(sent.get(member.id, 0)), next(states) != "paused") for member in members])
            for name, held, members, sent in pools
        ]

    def check_members(self, members: tuple[Member, ...]) -> None:
        """InvalidInput (field `members`, its text naming the member: `members.2.sender ...`) for a member that is
        not a configured provider's sender, or appears twice."""
        seen: set[str] = set()
        for index, member in enumerate(members):
            if member.provider not in self.catalog.providers:
                raise InvalidInput(
                    f"members.{index}.provider must be one of {', '.join(self.catalog.providers)}; "
                    f"got {member.provider!r}",
                    "unknown_provider",
                    "members",
                )
            try:
                self.catalog.check_sender(member.provider, member.sender, f"members.{index}.sender")
            except InvalidInput as invalid:
                raise InvalidInput(str(invalid), invalid.body["code"], "members") from None
            if member.id in seen:
                raise InvalidInput(
                    f"members.{index} repeats {member.provider}/{member.sender}",
                    "duplicate_member",
                    "members",
                )
            seen.add(member.id)

    def check_sendable(self, name: str, kind: str, request: dict) -> Pool:
        """Pool `name`, or InvalidInput unless a message of `kind` can go through it as `request` asks: the pool
        exists, the request names no sender or provider of its own, and every member can send that kind."""
        if request.get("sender") is not None or request.get("provider") is not None:
            raise InvalidInput(
                "Name a pool or a sender (and provider), not both: a pool's members are its senders",
                "sender_and_pool",
                "pool",
            )
        pool = self.get(name)
        if pool is None:
            raise InvalidInput(
                f"pool {name!r} does not exist (PUT /v1/pools/<name> creates it)", "unknown_pool", "pool"
            )
        for member in pool.members:
            provider = self.catalog.providers.get(member.provider)
            if provider is None or kind not in provider.kinds:
                raise InvalidInput(
                    f"pool {name}'s member {member.provider}/{member.sender} cannot send {kind} messages",
                    "unsupported_kind",
                    "pool",
                )
        return pool


def _member(stored: dict) -> Member:
    """A member as the pool's record holds it (its sender id beside it, for the claim script)."""
    return Member(stored["provider"], stored["sender"], int(stored.get("weight", 1)))
