"""Steady load: the API held at a fixed request rate for minutes while a worker drains, with memory watched.

Usage: python -m bench.load [SECONDS] [RATE] [CONNECTIONS] [MOCK_LATENCY_MS] [WORKER_CONCURRENCY]
       (default 300 s at 1,000 requests/s, 64 connections, a worker with the service's defaults: the mock
       answering in 100 ms, 5 threads; `... 0 50` makes the worker drain as fast as this machine allows)
An open-loop client: request k is due at start + k/RATE whatever happened to the others, and its latency
is counted from when it was due, so a server that falls behind is seen (no coordinated omission). Each
request is a real `POST /v1/messages/send` with its own external_id, against the Procfile's web server,
while one worker (`celery -A tasks worker`, mock provider) sends. Printed: requests
and answers per second, p50/p95/p99/max, errors (non-200 or no answer), messages sent, and the resident
memory of the API's processes and the worker's, after a warm-up (the first tenth) and at the end; then
the p99 of each minute, so a tail that grows as the worker's backlog grows shows as a trend, not a blur.
A summary line starts with `load:`; `--check` makes the exit status say whether the targets were met
(p99 < 50 ms, 0 errors, memory growth < 10 %), for `make test-long`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import redis

from bench.common import API_KEY, private_redis, service_env, start_worker, stop, web_process
from bench.http_load import post


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (the web server's and Celery's children included)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        total += next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))
        todo += children.get(current, [])
    return total


def quantile99(values: list[float]) -> float:
    """The 99th percentile, also of a minute that got a single request (statistics.quantiles needs two)."""
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


def _request(port: int, index: int) -> bytes:
    body = json.dumps({"recipient_phone": "+5564999998888", "message_body": "Olá", "external_id": f"load-{index}"})
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
    return post(port, "/v1/messages/send", body.encode(), headers)


async def _connection(port, slots, began, rate, end, latencies, errors):
    reader = writer = None
    for index in slots:
        due = began + index / rate
        if due >= end:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_request(port, index))
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append((due - began, time.perf_counter() - due))
            if not status_line.startswith(b"HTTP/1.1 200"):
                errors.append(status_line.decode(errors="replace").strip())
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            errors.append(repr(error))
            writer = None
    if writer is not None:
        writer.close()


async def _drive(port: int, seconds: float, rate: float, connections: int, on_tick) -> tuple[list, list, float]:
    latencies: list[tuple[float, float]] = []
    errors: list[str] = []
    counter = itertools.count()
    began = time.perf_counter() + 0.5
    end = began + seconds
    ticker = asyncio.create_task(on_tick(began, end))
    # Each connection takes the next due request when it is free: slots are handed out in order.
    await asyncio.gather(*(_connection(port, counter, began, rate, end, latencies, errors) for _ in range(connections)))
    await ticker
    return latencies, errors, time.perf_counter() - began


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    seconds = float(args[0]) if args else 300
    rate = float(args[1]) if len(args) > 1 else 1000
    connections = int(args[2]) if len(args) > 2 else 64
    latency_ms = args[3] if len(args) > 3 else "100"
    concurrency = args[4] if len(args) > 4 else "5"
    with private_redis() as redis_url:
        env = service_env(redis_url, MOCK_LATENCY_MS=latency_ms, WORKER_CONCURRENCY=concurrency, LOG_LEVEL="warning")
        worker = start_worker(env, "load")
        try:
            with web_process(env) as (port, api):
                api_pid = api.pid
                memory: dict[str, tuple[int, int]] = {}

                async def tick(began: float, end: float) -> None:
                    await asyncio.sleep(max(0.0, began + (end - began) / 10 - time.perf_counter()))
                    memory["warm"] = (rss_bytes(api_pid), rss_bytes(worker.pid))
                    await asyncio.sleep(max(0.0, end - 1 - time.perf_counter()))
                    memory["end"] = (rss_bytes(api_pid), rss_bytes(worker.pid))

                latencies, errors, elapsed = asyncio.run(_drive(port, seconds, rate, connections, tick))
                counts = redis.Redis.from_url(redis_url)  # finished messages are counted per day
                sent = sum(int(counts.hget(key, "sent") or 0) for key in counts.keys("dispatch:counts:*"))
        finally:
            stop(worker)
    by_minute = {}
    for at, latency in latencies:
        by_minute.setdefault(int(at // 60), []).append(latency)
    latencies = [latency for _, latency in latencies]
    cuts = statistics.quantiles(latencies, n=100)
    (api_warm, worker_warm), (api_end, worker_end) = memory["warm"], memory["end"]
    api_growth = (api_end - api_warm) / api_warm * 100
    worker_growth = (worker_end - worker_warm) / worker_warm * 100
    print(
        f"load: {seconds:.0f} s at {rate:.0f} requests/s offered ({connections} connections): "
        f"{len(latencies) / elapsed:.0f} answered/s, p50 {cuts[49] * 1000:.1f} ms, p95 {cuts[94] * 1000:.1f} ms, "
        f"p99 {cuts[98] * 1000:.1f} ms, max {max(latencies) * 1000:.0f} ms, errors {len(errors)}; "
        f"{sent:,} sent meanwhile by one worker (threads -c {concurrency}, MOCK_LATENCY_MS={latency_ms}); "
        f"memory after warm-up → end: API {api_warm / 2**20:.0f} → "
        f"{api_end / 2**20:.0f} MiB ({api_growth:+.1f} %), worker {worker_warm / 2**20:.0f} → "
        f"{worker_end / 2**20:.0f} MiB ({worker_growth:+.1f} %)"
    )
    if len(by_minute) > 1:
        print("p99 by minute:", ", ".join(f"{quantile99(v) * 1000:.0f} ms" for _, v in sorted(by_minute.items())))
    if errors:
        print("first errors:", errors[:5])
    if "--check" in sys.argv:
        met = cuts[98] < 0.050 and not errors and api_growth < 10 and worker_growth < 10
        sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
