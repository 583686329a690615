"""Start-up checks on the Redis server that holds our queue and records."""

from __future__ import annotations

import logging

import redis

log = logging.getLogger(__name__)


def warn_if_evicting(client: redis.Redis) -> None:
    """Shout when Redis may evict keys: it would silently drop queued tasks and message records.

    Seed 000's advice stands: set `maxmemory-policy noeviction`. Managed Redis services sometimes
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
