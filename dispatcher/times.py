"""How the dispatcher writes a moment: ISO-8601 UTC with milliseconds (the API, the records), or the same
moment as epoch milliseconds (a history step's short form, dispatcher/history.py)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(timestamp: float) -> str:
    """ISO-8601 UTC with milliseconds and a Z, as the legacy system wrote its times."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def millis(timestamp: float) -> int:
    """The epoch milliseconds `iso(timestamp)` writes (microseconds rounded, then truncated), so that the two
    forms of one moment agree; lib/lifecycle.lua's `millis` computes the same."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return int(moment.replace(microsecond=0).timestamp()) * 1000 + moment.microsecond // 1000
