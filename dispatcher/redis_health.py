"""Start-up checks on the Redis server that holds our queue and records."""

from __future__ import annotations

import logging
import time

import redis

log = logging.getLogger(__name__)


def warn_if_evicting(client: redis.Redis) -> None:
    """Shout when Redis may evict keys: it would silently drop queued tasks and message records.

    The legacy system's advice stands: set `maxmemory-policy noeviction`. Managed Redis services sometimes
    forbid CONFIG GET; then we can only say so.
    """
    try:
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
    except redis.RedisError as error:
        log.info("could not read Redis maxmemory-policy (%s); make sure it is noeviction", error)
        return
    if policy != "noeviction":
        log.warning(
            "Redis maxmemory-policy is %s: Redis may evict queued messages under memory pressure. "
            "Set it to noeviction (CONFIG SET maxmemory-policy noeviction, or your provider's dashboard).",
            policy,
        )


# The longest value a message record may hold and stay a compact listpack (a bigger value turns the whole record
# into a hashtable, about three times the size): callback URLs and external_ids such as reach-town's, with a
# campaign's and a contact's UUIDs (90 characters), pass Redis's default of 64 bytes.
RECORD_VALUE_BYTES = 256


def warn_if_records_bloat(client: redis.Redis) -> None:
    """Shout when Redis would keep a record holding one value over 64 bytes (a callback URL, a long external_id)
    as a hashtable: every such message would keep about 1.3 KB of RAM for its whole retention, not 0.7 KB
    (`python -m bench.memory`, reach-town's single sends). `hash-max-ziplist-value` is the name Redis 6 knows
    and Redis 7 still answers to (hash-max-listpack-value)."""
    try:
        limit = int(client.config_get("hash-max-ziplist-value").get("hash-max-ziplist-value", RECORD_VALUE_BYTES))
    except redis.RedisError as error:
        log.info("could not read Redis hash-max-listpack-value (%s); make sure it is %d", error, RECORD_VALUE_BYTES)
        return
    if limit < RECORD_VALUE_BYTES:
        log.warning(
            "Redis hash-max-listpack-value is %d: a message whose callback URL or external_id is longer keeps a "
            "record three times the size for its whole retention. Set it to %d (CONFIG SET "
            "hash-max-listpack-value %d, or your provider's settings); see docs/operations.md, Sizing Redis.",
            limit,
            RECORD_VALUE_BYTES,
            RECORD_VALUE_BYTES,
        )


# Leases are instants written on one worker's clock and read on another's (see docs/reliability.md):
# a clock behind by more than a lease's renewal margin makes a live claim look expired to the others.
CLOCK_SKEW_WARNING_SECONDS = 1.0


def warn_if_clock_skewed(client: redis.Redis, now: float | None = None) -> float:
    """Shout when this host's clock and Redis's disagree by more than a second; returns the skew (s), 0 when
    Redis cannot be asked (a worker starting during an outage must still start its loops)."""
    try:
        seconds, micros = client.time()
    except redis.RedisError as error:
        log.info("could not read Redis's clock (%s); keep every host on NTP", error)
        return 0.0
    skew = (time.time() if now is None else now) - (seconds + micros / 1e6)
    if abs(skew) > CLOCK_SKEW_WARNING_SECONDS:
        log.warning(
            "this host's clock is %.1f s %s Redis's: leases and schedules are written on each worker's clock, so "
            "keep every host on NTP (a worker more than a few seconds behind can see a live claim as expired)",
            abs(skew),
            "ahead of" if skew > 0 else "behind",
        )
    return skew
