"""Which workers are alive and what they consume, as the workers themselves last said, in Redis.

A ping over the broker (Flower's way, `GET /v1/queue/status`'s way) waits for answers; readiness
checks and metrics must answer in milliseconds, so every worker also writes a heartbeat every few
seconds, and readers look at who wrote one within the last minute.
"""

from __future__ import annotations

import logging
import time

import redis

from dispatcher import redis_keys

log = logging.getLogger(__name__)
WORKERS_KEY = redis_keys.WORKERS.key()
QUEUES_KEY = redis_keys.WORKER_QUEUES.key()
SEEN_WITHIN_SECONDS = 60
FORGET_AFTER_SECONDS = 86400


def beat(client: redis.Redis, name: str, queues: list[str]) -> None:
    now = time.time()
    pipe = client.pipeline(transaction=False)
    pipe.zadd(WORKERS_KEY, {name: now})
    pipe.hset(QUEUES_KEY, name, ",".join(sorted(queues)))
    pipe.zremrangebyscore(WORKERS_KEY, "-inf", now - FORGET_AFTER_SECONDS)
    pipe.execute()


def seen(client: redis.Redis) -> dict[str, list[str]]:
    """Workers heard from within the last minute, with the queues each consumes."""
    names = client.zrangebyscore(WORKERS_KEY, time.time() - SEEN_WITHIN_SECONDS, "+inf")
    queues = client.hmget(QUEUES_KEY, names) if names else []
    return {name: (listed or "").split(",") for name, listed in zip(names, queues, strict=True)}


def consumers(workers: dict[str, list[str]], queue: str) -> list[str]:
    return sorted(name for name, queues in workers.items() if queue in queues)


def no_consumer_warning(workers: dict[str, list[str]], queue: str) -> str | None:
    """Said (and logged) when no worker seen within the last minute consumes `queue`: messages wait."""
    if consumers(workers, queue):
        return None
    warning = f"no worker has consumed the queue {queue} in the last minute: messages are accepted but wait"
    log.warning(warning)
    return warning
