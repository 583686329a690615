"""Operators' endpoints with a full store: /metrics, /health/ready and a page of failed messages.

Usage: python -m bench.operations [MESSAGES] [FAILED] [REQUESTS]
Fills a private Redis with MESSAGES messages (default 100,000) as batches of 10,000, through the store's
own scripts; FAILED of them (default 20,000) are claimed and failed, half with one error code and half
with another, as a worker records permanent errors. Then the Procfile's web server answers REQUESTS
(default 200) sequential requests of each kind, and the p50/p99 of each is printed: one client, so the
figure is the latency of one request, not a throughput.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import urllib.request

from bench.common import API_KEY, private_redis, service_env, web
from dispatcher import statuses
from dispatcher.accounts import key_id
from dispatcher.messages import Route, new_message
from dispatcher.pools import Member, Pool
from dispatcher.services import build_services
from dispatcher.settings import load_settings
from dispatcher.store import MessageStore, Move
from tasks.envelope import publishers

BATCH = 10_000
METRICS_TOKEN = "bench-metrics-token"


def fill(store: MessageStore, messages: int, failed: int) -> None:
    """MESSAGES queued messages, FAILED of them failed (claimed, then failed with a permanent error)."""
    failed_ids: list[str] = []
    for start in range(0, messages, BATCH):
        rows = [
            new_message(key_id(API_KEY), f"ops-{n}", f"+55649{n:08d}", "Olá", Route("mock"))
            for n in range(start, min(start + BATCH, messages))
        ]
        batch_id = f"batch-ops-{start}"
        store.create_batch(batch_id, key_id(API_KEY), rows, time.time(), {"provider": "mock"})
        store.redis.hset(store.batch_key(batch_id), "state", "running")
        failed_ids += [row.message_id for row in rows][: max(0, failed - len(failed_ids))]
    for start in range(0, len(failed_ids), 100):
        group = failed_ids[start : start + 100]
        batch_id = store.redis.hget(store.message_key(group[0]), "batch_id")
        _, claims = store.claim_group(batch_id, group)
        moves = []
        for n, claim in enumerate(claims):
            code = "63016" if (start + n) % 2 else "131026"
            error = json.dumps({"kind": "permanent", "code": code, "message": "refused"})
            moves.append(Move(claim.message_id, statuses.FAILED, (statuses.SENDING,), fields={"last_error": error}))
        store.move(moves)


def timed(url: str, headers: dict[str, str], requests: int) -> tuple[float, float]:
    """p50 and p99 latency (ms) of `requests` sequential GETs."""
    latencies = []
    for _ in range(requests):
        began = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as answer:
            answer.read()
            assert answer.status == 200, answer.status
        latencies.append((time.perf_counter() - began) * 1000)
    cuts = statistics.quantiles(latencies, n=100)
    return cuts[49], cuts[98]


def main() -> None:
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    failed = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    requests = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    with private_redis() as redis_url:
        env = service_env(redis_url, METRICS_TOKEN=METRICS_TOKEN, SENDER_AUTO_PAUSE_WINDOW="0")
        settings = load_settings(env)
        services = build_services(settings, publishers(settings.queue_name))
        store = services.store
        fill(store, messages, failed)
        # A pool of ten members, one of them paused, as an operator would watch it mid-campaign.
        services.pools.save(Pool("chips", tuple(Member("mock", f"chip-{n}") for n in range(10))))
        services.senders.pause("mock", "chip-3", "paused by an operator")
        with web(env) as port:
            base = f"http://127.0.0.1:{port}"
            key = {"X-API-Key": API_KEY}
            first_page = json.loads(
                urllib.request.urlopen(
                    urllib.request.Request(f"{base}/v1/messages?status=failed&limit=100", headers=key)
                ).read()
            )
            cases = [
                ("/metrics", f"{base}/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"}),
                ("/health/ready", f"{base}/health/ready", {}),
                ("failed, first page of 100", f"{base}/v1/messages?status=failed&limit=100", key),
                (
                    "failed, a later page of 100",
                    f"{base}/v1/messages?status=failed&limit=100&cursor={first_page['next_cursor']}",
                    key,
                ),
                ("failed, by error code, 100", f"{base}/v1/messages?status=failed&limit=100&error_code=63016", key),
                ("a pool of 10, GET /v1/pools/chips", f"{base}/v1/pools/chips", key),
            ]
            figures = [(name, *timed(url, headers, requests)) for name, url, headers in cases]
    print(
        f"with {messages:,} messages stored ({failed:,} failed), {requests} sequential requests each: "
        + "; ".join(f"{name} p50 {p50:.1f} ms, p99 {p99:.1f} ms" for name, p50, p99 in figures)
    )


if __name__ == "__main__":
    main()
