"""What one account may ask of us: requests a second, and new messages a UTC day.

Both live in Redis, so every web process spends from the same allowance: a tenant cannot multiply its
rate by the number of processes, nor flood the store for the others. A request over its rate is
answered 429 with Retry-After (`rate_limited`); a send past the day's count is answered 429 with the
seconds to midnight UTC (`daily_quota_exceeded`). A limit of 0 turns that quota off.

A single send, the hot path, pays nothing extra: its create script checks both quotas in the same step
(`Admission`). Every other request spends its token in one script call of its own (`take_request`); a
bulk request counts its rows before it writes them and gives back what turned out to be replays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis

from dispatcher import redis_keys, scripts
from dispatcher.settings import QuotaSettings
from dispatcher.store import DAY


class QuotaExceeded(Exception):
    """An account asked for more than its quota: which one (`code`), a text, and when to retry (seconds)."""

    def __init__(self, code: str, text: str, retry_after: float):
        super().__init__(text)
        self.code = code
        self.retry_after = retry_after


@dataclass(frozen=True)
class Admission:
    """The keys and arguments with which a create script checks an account's quotas itself."""

    keys: list[str]  # the request bucket, the day's count ('' for a quota that is off)
    args: list  # now, seconds per request, bucket size, daily limit, when the day's count expires


class Quotas:
    def __init__(self, client: redis.Redis, quotas: QuotaSettings, clock: Callable[[], float]):
        self.quotas = quotas
        self.clock = clock
        self._admit_request = scripts.register(client, "admit_request")
        self._admit_messages = scripts.register(client, "admit_messages")

    def admission(self, account: str) -> Admission | None:
        """What a single send's create script checks (None: both quotas are off)."""
        rate, limit = self.quotas.requests_per_second, self.quotas.messages_per_day
        if not rate and not limit:
            return None
        now = self.clock()
        return Admission(
            keys=[self._bucket_key(account) if rate else "", self._day_key(account, now) if limit else ""],
            args=[now, 1 / rate if rate else "", self.quotas.burst, limit, self._day_ends(now) + DAY],
        )

    def refusal(self, code: str, figure: float) -> QuotaExceeded:
        """The refusal a create script answered: `rate_limited` (figure: the wait) or `daily_quota_exceeded`
        (figure: the count already used)."""
        if code == "rate_limited":
            return QuotaExceeded(
                code,
                f"Too many requests for this account (at most {self.quotas.requests_per_second:g} a second)",
                figure,
            )
        now = self.clock()
        return QuotaExceeded(
            code,
            f"This account's daily message quota is used up ({int(figure)} of {self.quotas.messages_per_day} "
            "today); it renews at 00:00 UTC",
            self._day_ends(now) - now,
        )

    def take_request(self, account: str) -> None:
        """Spend one request of `account`'s rate, or raise QuotaExceeded."""
        rate = self.quotas.requests_per_second
        if not rate:
            return
        wait = float(
            self._admit_request(keys=[self._bucket_key(account)], args=[self.clock(), 1 / rate, self.quotas.burst])
        )
        if wait > 0:
            raise self.refusal("rate_limited", wait)

    def take_messages(self, account: str, count: int) -> None:
        """Count `count` new messages against `account`'s day, or raise QuotaExceeded counting none."""
        limit = self.quotas.messages_per_day
        if not limit or not count:
            return
        now = self.clock()
        admitted, *used = self._admit_messages(
            keys=[self._day_key(account, now)], args=[count, limit, self._day_ends(now) + DAY]
        )
        if not admitted:
            raise self.refusal("daily_quota_exceeded", used[0])

    def give_back(self, account: str, count: int) -> None:
        """Return `count` messages counted by take_messages that were not new after all (replays)."""
        if self.quotas.messages_per_day and count:
            now = self.clock()
            self._admit_messages(keys=[self._day_key(account, now)], args=[-count, 0, self._day_ends(now) + DAY])

    @staticmethod
    def _day_ends(now: float) -> int:
        return (int(now // DAY) + 1) * DAY

    @staticmethod
    def _bucket_key(account: str) -> str:
        return redis_keys.REQUEST_BUCKET.key(account)

    @staticmethod
    def _day_key(account: str, now: float) -> str:
        return redis_keys.DAILY_COUNT.key(account, int(now // DAY))
