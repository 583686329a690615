"""How the dispatcher writes a moment: ISO-8601 UTC with milliseconds (what the API shows), or the same moment
as epoch milliseconds (what a message record and its history's short steps keep: a listpack keeps a number in
9 bytes where the text takes 25)."""

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


def shown(kept: str) -> str:
    """A record's time as the API shows it: kept as epoch milliseconds, or as the ISO text a record written
    before kept."""
    return kept if "T" in kept else iso(int(kept) / 1000)
