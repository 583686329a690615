"""Scaling out: one Redis, 1, 2 and 4 worker processes draining the same campaign; what each message costs Redis.

Usage: python -m bench.scaling [ROWS] [WORKERS...]
For each count of workers, on a fresh database of one private Redis: ROWS bulk rows (10,000 a request, one
templated text) are accepted in this process, then that many `celery -A tasks worker` processes (the default
settings: threads, WORKER_CONCURRENCY=5; MOCK_LATENCY_MS=0) drain them. Printed per run: messages a second
from the first send to the last, Redis's own CPU per message (INFO cpu) and the Redis commands per message
(INFO commandstats: every command, the calls a script makes inside it included), over the drain alone. On this 2-core
machine the workers and Redis share two cores, so 4 workers measure contention as much as scale.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime

from bench.common import (
    accept_campaign,
    private_redis,
    redis_commands,
    redis_cpu,
    service_env,
    start_worker,
    stop,
    wait_until,
)
from dispatcher.accounts import key_id
from dispatcher.services import build_services
from dispatcher.settings import load_settings
from tasks.envelope import publishers

BULK_ROWS = 10_000
TEMPLATE = "Olá {{name}}! A sua consulta de terça está confirmada."


def _accept(services, rows: int) -> list[str]:
    def row(n: int) -> dict:
        return {"recipient_phone": f"+55649{n:08d}", "external_id": f"c-{n}", "variables": {"name": f"M {n}"}}

    return accept_campaign(services, key_id("bench"), TEMPLATE, rows, row, BULK_ROWS)


def one_run(url: str, rows: int, workers: int) -> tuple[float, float, float]:
    """(messages a second, Redis CPU µs a message, Redis commands a message) with `workers` processes."""
    env = service_env(url, MOCK_LATENCY_MS="0")
    settings = load_settings(env)
    services = build_services(settings, publishers(settings.queue_name))
    client = services.store.redis
    client.flushdb()
    batches = _accept(services, rows)
    cpu, commands = redis_cpu(client), redis_commands(client)
    processes = [start_worker(env, name=f"scale{n}") for n in range(workers)]
    try:
        wait_until(lambda: services.store.counts().get("sent", 0) > 0, 60, "the first send")
        began = time.time()
        # Polled slowly, so that the bench's own reads are a small part of the commands counted; the end is the
        # last batch's own finish time.
        while services.store.counts().get("sent", 0) < rows:
            time.sleep(0.5)
        cpu, commands = redis_cpu(client) - cpu, redis_commands(client) - commands
    finally:
        for process in processes:
            stop(process)
    ended = max(_finished_at(services.store.batch(batch_id) or {}) for batch_id in batches)
    return rows / (ended - began), cpu / rows * 1e6, commands / rows


def _finished_at(batch: dict) -> float:
    return datetime.fromisoformat(batch["finished_at"].replace("Z", "+00:00")).timestamp()


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    counts = [int(arg) for arg in sys.argv[2:]] or [1, 2, 4]
    with private_redis() as url:
        for workers in counts:
            rate, cpu, commands = one_run(url, rows, workers)
            print(
                f"{workers} worker process(es), {rows:,} bulk rows, MOCK_LATENCY_MS=0: {rate:,.0f} messages/s; "
                f"Redis {cpu:.0f} µs CPU and {commands:.1f} commands a message"
            )


if __name__ == "__main__":
    main()
