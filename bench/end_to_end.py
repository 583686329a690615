"""End-to-end messages/s through one worker: N messages accepted, then drained by one worker process.

Usage: python -m bench.end_to_end [N] [MOCK_LATENCY_MS] [WORKER_CONCURRENCY] [POOL]
Messages are accepted through the same path as the API's send (record + task in one Redis script),
then one `celery -A tasks worker` starts; the rate is counted from the first message finished to
the last. Also printed, for the capacity model (docs/performance.md): Redis's CPU and commands a message, for the
accept and for the drain (from the worker's start: its claims, records, Celery's own commands and task events).
"""

from __future__ import annotations

import sys
import time

import redis

from bench.common import pending, private_redis, redis_commands, redis_cpu, service_env, start_worker, stop, wait_until
from dispatcher.accounts import key_id
from dispatcher.messages import Route
from dispatcher.services import build_services
from dispatcher.settings import load_settings
from tasks.envelope import publishers


def preload(redis_url: str, count: int) -> None:
    settings = load_settings(service_env(redis_url))
    service = build_services(settings, publishers(settings.queue_name)).messages
    caller = key_id("bench")
    route = Route("mock")
    for index in range(count):
        service.accept(caller, "+5564999998888", "bench", f"bench-{index}", route)


class RedisCost:
    """Redis's CPU (µs) and commands a message over a stretch: `RedisCost(client)`, then `.per(messages)`."""

    def __init__(self, client: redis.Redis):
        self.client = client
        self.cpu, self.commands = redis_cpu(client), redis_commands(client)

    def per(self, messages: int) -> str:
        cpu = (redis_cpu(self.client) - self.cpu) / messages * 1e6
        commands = (redis_commands(self.client) - self.commands) / messages
        return f"Redis {cpu:.0f} µs CPU and {commands:.1f} commands a message"


def measure(count: int, latency_ms: int, concurrency: int, pool: str) -> tuple[float, str, str]:
    """(messages a second, the accept's Redis cost, the drain's Redis cost)."""
    with private_redis() as url:
        client = redis.Redis.from_url(url)
        accept = RedisCost(client)
        preload(url, count)
        accepted = accept.per(count)
        env = service_env(url, MOCK_LATENCY_MS=str(latency_ms), WORKER_CONCURRENCY=str(concurrency), WORKER_POOL=pool)
        drain = RedisCost(client)
        worker = start_worker(env, pool=pool)
        try:
            wait_until(lambda: pending(url) < count, 60, "the first message to finish")
            started, left = time.perf_counter(), pending(url)
            wait_until(lambda: pending(url) == 0, 600, "every message to finish")
            rate = left / (time.perf_counter() - started)
            return rate, accepted, drain.per(count)
        finally:
            stop(worker)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    latency = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    pool = sys.argv[4] if len(sys.argv) > 4 else "threads"
    rate, accepted, drained = measure(count, latency, concurrency, pool)
    print(f"end-to-end, one worker ({pool} -c {concurrency}), MOCK_LATENCY_MS={latency}: {rate:.0f} messages/s")
    print(f"  accept: {accepted}; drain: {drained}")


if __name__ == "__main__":
    main()
