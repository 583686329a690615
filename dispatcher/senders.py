"""Senders (a provider's sending numbers or instances) and their pace: the provider's default, or the
sender's own rate and burst, kept in Redis where the claim scripts read them (`pace` in common.lua).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

SENDER_PREFIX = "dispatch:sender:"
PACE_PREFIX = "dispatch:pace:"


@dataclass(frozen=True)
class SenderPace:
    provider: str
    sender: str
    rate_per_second: float
    burst: int
    own: bool  # the sender's own settings, not its provider's defaults
    current_wait_seconds: float  # how long a new message would wait for a slot now


class SenderRegistry:
    def __init__(self, client: redis.Redis, defaults: dict[str, tuple[float, int]]):
        self.redis = client
        self.defaults = defaults

    def get(self, provider: str, sender: str) -> SenderPace:
        own, next_free = (
            self.redis.pipeline(transaction=False)
            .hgetall(f"{SENDER_PREFIX}{provider}:{sender}")
            .get(f"{PACE_PREFIX}{provider}:{sender}")
            .execute()
        )
        rate, burst = self.defaults.get(provider, (0.0, 1))
        rate, burst = float(own.get("rate", rate)), int(own.get("burst", burst))
        wait = 0.0
        if rate > 0 and next_free:
            wait = max(0.0, float(next_free) - (burst - 1) / rate - time.time())
        return SenderPace(provider, sender, rate, burst, bool(own), round(wait, 3))

    def set(self, provider: str, sender: str, rate: float, burst: int) -> SenderPace:
        self.redis.hset(f"{SENDER_PREFIX}{provider}:{sender}", mapping={"rate": rate, "burst": burst})
        return self.get(provider, sender)

    def known(self, configured: dict[str, tuple[str, ...]]) -> list[tuple[str, str]]:
        """Every sender worth showing: the configured ones, those with their own settings, and those that
        have sent (a limiter in Redis) — for providers such as the mock that accept any sender."""
        found = {(provider, sender) for provider, senders in configured.items() for sender in senders}
        for prefix in (SENDER_PREFIX, PACE_PREFIX):
            for key in self.redis.scan_iter(f"{prefix}*", count=500):
                provider, _, sender = key[len(prefix) :].partition(":")
                if provider in configured:
                    found.add((provider, sender))
        return sorted(found)
