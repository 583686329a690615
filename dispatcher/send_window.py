"""The daily send window (`SEND_WINDOW=08:00-20:00` in `SEND_TIMEZONE`): outside it nothing is sent,
and messages wait, as `scheduled`, for it to open.

The window is read here, in Python, where time zones are easy; the claim scripts only get the
moment the window next opens (0 while it is open) and hold a message until then.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


class SendWindow:
    def __init__(self, start: time, end: time, zone: ZoneInfo):
        self.start, self.end, self.zone = start, end, zone

    @classmethod
    def parse(cls, text: str, zone: str) -> SendWindow:
        """`HH:MM-HH:MM` (seconds allowed); a window may cross midnight (`22:00-06:00`). Raises ValueError."""
        start, _, end = text.partition("-")
        return cls(time.fromisoformat(start.strip()), time.fromisoformat(end.strip()), ZoneInfo(zone))

    def opens_at(self, now: float) -> float:
        """0 while the window is open; else the moment (unix seconds) it next opens."""
        local = datetime.fromtimestamp(now, self.zone)
        clock = local.time()
        crosses_midnight = self.start > self.end
        inside = (clock >= self.start or clock < self.end) if crosses_midnight else self.start <= clock < self.end
        if inside:
            return 0.0
        opening = local.replace(hour=self.start.hour, minute=self.start.minute, second=self.start.second, microsecond=0)
        if opening <= local:
            opening += timedelta(days=1)
        return opening.timestamp()
