"""End-to-end messages/s through one worker: N messages accepted, then drained by one worker process.

Usage: python -m bench.end_to_end [N] [MOCK_LATENCY_MS] [WORKER_CONCURRENCY] [POOL]
Messages are accepted through the same path as the API's send (record + task in one Redis script),
then one `celery -A tasks worker` starts; the rate is counted from the first message finished to
the last.
"""

from __future__ import annotations

import sys
import time

from bench.common import pending, private_redis, service_env, start_worker, stop, wait_until
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


def measure(count: int, latency_ms: int, concurrency: int, pool: str) -> float:
    with private_redis() as url:
        preload(url, count)
        env = service_env(url, MOCK_LATENCY_MS=str(latency_ms), WORKER_CONCURRENCY=str(concurrency), WORKER_POOL=pool)
        worker = start_worker(env, pool=pool)
        try:
            wait_until(lambda: pending(url) < count, 60, "the first message to finish")
            started, left = time.perf_counter(), pending(url)
            wait_until(lambda: pending(url) == 0, 600, "every message to finish")
            return left / (time.perf_counter() - started)
        finally:
            stop(worker)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    latency = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    pool = sys.argv[4] if len(sys.argv) > 4 else "threads"
    rate = measure(count, latency, concurrency, pool)
    print(f"end-to-end, one worker ({pool} -c {concurrency}), MOCK_LATENCY_MS={latency}: {rate:.0f} messages/s")


if __name__ == "__main__":
    main()
