"""How long to wait before trying again, for a message's provider call and a callback delivery alike.

About base·2^(attempt-1), between half and all of it (the jitter spreads the retries of many messages
that failed together), capped. A peer's own Retry-After wins when it asks for longer, up to
RETRY_AFTER_MAX_SECONDS: a longer one (or a date far off) is more likely a provider's mistake than a wish
to see the message a day late.
"""

from __future__ import annotations

import random

RETRY_AFTER_MAX_SECONDS = 3600


def backoff_seconds(attempt: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """The wait before attempt `attempt + 1`, in seconds (`base` and `cap` in seconds too)."""
    ceiling = min(cap, base * 2 ** min(attempt - 1, 40))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    return max(delay, min(retry_after or 0, RETRY_AFTER_MAX_SECONDS))
