"""What contacts' rules (dispatcher/contacts.py) cost: single sends and a bulk accept with the rules off and on,
and a single send's latency with 1,000,000 opt-outs stored.

Usage: python -m bench.contacts [MESSAGES] [ROUNDS]
"Rules on" is every rule at work: the opt-out lookup, the 24-hour window (Meta, the contact has written), the
daily count with a cap too high to refuse. "Off" is the same service without contacts (no rule argument, as
before issue 17). Both run in this process on one private Redis, ROUNDS times each in a shuffled order (the
store grows as a bench runs, so a fixed order would favour the first); the medians are printed, with Redis's
own CPU per message (INFO cpu), which this noisy machine moves less than wall time. Single sends: sends a
second (one at a time, as reach-town's loop calls) and CPU per message on each side. Bulk: the time to accept
10,000 rows. Then 1,000,000 other numbers are put on the account's opt-out list and the single-send latency
(p50, p99) is measured beside the same with the list empty.
"""

from __future__ import annotations

import itertools
import random
import statistics
import sys
import time

from bench.common import private_redis, redis_cpu
from dispatcher import redis_keys
from dispatcher.contacts import Contacts
from dispatcher.messages import MessageService, Route, new_message
from dispatcher.settings import load_settings
from dispatcher.store import MessageStore, connect
from tasks.envelope import chunk_task_for, send_task_for

ACCOUNT = "bench"
SENDER = "106540352242922"
PHONES = [f"+55649{n:08d}" for n in range(1000)]
BULK_ROWS = 10_000


def _settings(url: str):
    return load_settings(
        {
            "API_KEY": "bench:bench-key-0123456789",
            "REDIS_URL": url,
            "APP_ENV": "test",
            "WHATSAPP_PROVIDER": "meta",
            "META_ACCESS_TOKEN": "token",
            "META_PHONE_NUMBER_ID": SENDER,
            "META_APP_SECRET": "bench-app-secret-0123456789",
            "META_WEBHOOK_VERIFY_TOKEN": "bench-verify-token",
            "CONTACT_DAILY_CAP": str(10**9),
        }
    )


def _services(url: str) -> dict[str, MessageService]:
    settings = _settings(url)
    client = connect(url)
    store = MessageStore.from_settings(settings)
    contacts = Contacts(client, settings, time.time, "bench-chain-key")
    # Every contact has written today: its window with our number is open.
    now = time.time()
    client.hset(redis_keys.WINDOW.key(f"meta:{SENDER}", int(now // 86400)), mapping=dict.fromkeys(PHONES, now))
    tasks = send_task_for("q"), chunk_task_for("q")
    return {
        "rules off": MessageService(store, *tasks, 500),
        "rules on": MessageService(store, *tasks, 500, contacts=contacts),
    }


def _singles(service: MessageService, messages: int, ids) -> tuple[float, float, float, list[float]]:
    """(sends a second, our CPU µs a message, Redis CPU µs a message, each send's seconds)."""
    client = service.store.redis
    route = Route("meta", SENDER)
    latencies = []
    redis_before, ours_before, started = redis_cpu(client), time.process_time(), time.perf_counter()
    for n in range(messages):
        begun = time.perf_counter()
        service.accept(ACCOUNT, PHONES[n % len(PHONES)], "Olá! Bench", f"e-{next(ids)}", route)
        latencies.append(time.perf_counter() - begun)
    elapsed = time.perf_counter() - started
    return (
        messages / elapsed,
        (time.process_time() - ours_before) / messages * 1e6,
        (redis_cpu(client) - redis_before) / messages * 1e6,
        latencies,
    )


def _bulk(service: MessageService, ids) -> tuple[float, float]:
    """(seconds to accept BULK_ROWS rows, Redis CPU µs a row)."""
    rows = [new_message(ACCOUNT, f"b-{next(ids)}", PHONES[n % len(PHONES)], "Olá! Bench") for n in range(BULK_ROWS)]
    client = service.store.redis
    redis_before, started = redis_cpu(client), time.perf_counter()
    service.accept_batch(ACCOUNT, rows, Route("meta", SENDER))
    return time.perf_counter() - started, (redis_cpu(client) - redis_before) / BULK_ROWS * 1e6


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _fill_opt_outs(client, count: int) -> None:
    key = f"dispatch:optouts:{ACCOUNT}"
    for start in range(0, count, 10_000):
        client.zadd(key, {f"+1555{n:07d}": time.time() for n in range(start, min(start + 10_000, count))})


def main() -> None:
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    ids = itertools.count()
    with private_redis() as url:
        services = _services(url)
        singles: dict[str, list] = {name: [] for name in services}
        bulks: dict[str, list[tuple[float, float]]] = {name: [] for name in services}
        order = random.Random(17)
        for _ in range(rounds):
            for name in order.sample(list(services), len(services)):
                singles[name].append(_singles(services[name], messages, ids))
            for name in order.sample(list(services), len(services)):
                bulks[name].append(_bulk(services[name], ids))
        for name in services:
            rate = statistics.median(run[0] for run in singles[name])
            ours = statistics.median(run[1] for run in singles[name])
            theirs = statistics.median(run[2] for run in singles[name])
            print(
                f"single sends, {name} ({rounds} rounds of {messages}): {rate:.0f}/s, CPU per message: "
                f"accepting {ours:.0f} µs, Redis {theirs:.1f} µs"
            )
        for name in services:
            seconds = statistics.median(run[0] for run in bulks[name])
            theirs = statistics.median(run[1] for run in bulks[name])
            print(f"bulk accept of {BULK_ROWS:,} rows, {name}: {seconds:.3f} s, Redis CPU {theirs:.1f} µs a row")

        service = services["rules on"]
        client = service.store.redis
        empty = [s for _ in range(rounds) for s in _singles(service, messages, ids)[3]]
        before = client.info("memory")["used_memory"]
        _fill_opt_outs(client, 1_000_000)
        stored = client.info("memory")["used_memory"] - before
        full = [s for _ in range(rounds) for s in _singles(service, messages, ids)[3]]
        for label, latencies in (("no opt-outs", empty), ("1,000,000 opt-outs", full)):
            print(
                f"single send latency, rules on, {label}: p50 {_percentile(latencies, 0.5) * 1e3:.3f} ms, "
                f"p99 {_percentile(latencies, 0.99) * 1e3:.3f} ms"
            )
        print(f"1,000,000 opt-outs take {stored / 1e6:.0f} MB of Redis memory ({stored / 1e6:.0f} bytes each)")


if __name__ == "__main__":
    main()
