"""What one account may ask of us: requests a second, and new messages a UTC day.

Both live in Redis, so every web process spends from the same allowance: a tenant cannot multiply its
rate by the number of processes, nor flood the store for the others. A request over its rate is
answered 429 with Retry-After (`rate_limited`); a send past the day's count is answered 429 with the
seconds to midnight UTC (`daily_quota_exceeded`). A limit of 0 turns that quota off (no Redis call).
"""

from __future__ import annotations

from collections.abc import Callable

import redis

from dispatcher.settings import QuotaSettings
from dispatcher.store import DAY, PREFIX, lua_script


class QuotaExceeded(Exception):
    """An account asked for more than its quota: which one (`code`), a text, and when to retry (seconds)."""

    def __init__(self, code: str, text: str, retry_after: float):
        super().__init__(text)
        self.code = code
        self.retry_after = retry_after


class Quotas:
    def __init__(self, client: redis.Redis, quotas: QuotaSettings, clock: Callable[[], float]):
        self.quotas = quotas
        self.clock = clock
        self._admit_request = lua_script(client, "admit_request", 0)
        self._admit_messages = lua_script(client, "admit_messages", 0)

    def take_request(self, account: str) -> None:
        """Spend one request of `account`'s rate, or raise QuotaExceeded."""
        rate = self.quotas.requests_per_second
        if not rate:
            return
        wait = float(
            self._admit_request(
                keys=[f"{PREFIX}quota:{account}:requests"], args=[self.clock(), 1 / rate, self.quotas.burst]
            )
        )
        if wait > 0:
            raise QuotaExceeded("rate_limited", f"Too many requests for this account (at most {rate:g} a second)", wait)

    def take_messages(self, account: str, count: int) -> None:
        """Count `count` new messages against `account`'s day, or raise QuotaExceeded counting none."""
        limit = self.quotas.messages_per_day
        if not limit or not count:
            return
        now = self.clock()
        day_ends = (int(now // DAY) + 1) * DAY
        admitted, *used = self._admit_messages(keys=[self._day_key(account, now)], args=[count, limit, day_ends + DAY])
        if not admitted:
            raise QuotaExceeded(
                "daily_quota_exceeded",
                f"This account's daily message quota is used up ({used[0]} of {limit} today; "
                f"{count} more asked); it renews at 00:00 UTC",
                day_ends - now,
            )

    def give_back(self, account: str, count: int) -> None:
        """Return `count` messages counted by take_messages that were not new after all (replays)."""
        if self.quotas.messages_per_day and count:
            now = self.clock()
            day_ends = (int(now // DAY) + 1) * DAY
            self._admit_messages(keys=[self._day_key(account, now)], args=[-count, 0, day_ends + DAY])

    @staticmethod
    def _day_key(account: str, now: float) -> str:
        return f"{PREFIX}quota:{account}:messages:{int(now // DAY)}"
