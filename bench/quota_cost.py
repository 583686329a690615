"""What an account's quotas cost a single send, measured as CPU per accepted message (steadier than requests/s
on a noisy machine): the accepting side (MessageService.accept, in this process) and Redis (its INFO cpu).

Usage: python -m bench.quota_cost [MESSAGES] [ROUNDS]
Alternates quotas off and on (limits too high to refuse anything, so every send pays the request bucket and
the day's count), ROUNDS times each, on one private Redis, and prints each variant's median.
"""

from __future__ import annotations

import itertools
import statistics
import sys
import time

from bench.common import private_redis, redis_cpu
from dispatcher.messages import MessageService, Route
from dispatcher.quotas import Quotas
from dispatcher.settings import QuotaSettings
from dispatcher.store import MessageStore, connect
from tasks.envelope import chunk_task_for, send_task_for

VARIANTS = {
    "quotas off": QuotaSettings(),
    "quotas on": QuotaSettings(requests_per_second=1e6, burst=2_000_000, messages_per_day=10**9),
}


def main() -> None:
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    external_ids = itertools.count()
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}
    with private_redis() as url:
        client = connect(url)
        store = MessageStore(client, retention_seconds=86400, queued_grace_seconds=300, lease_seconds=6)
        for _ in range(rounds):
            for name, quotas in VARIANTS.items():
                service = MessageService(
                    store, send_task_for("q"), chunk_task_for("q"), 500, Quotas(client, quotas, time.time)
                )
                redis_before, ours_before = redis_cpu(client), time.process_time()
                for _ in range(messages):
                    service.accept("bench", "+5564999998888", "Olá! Bench", f"e-{next(external_ids)}", Route("mock"))
                ours = (time.process_time() - ours_before) / messages * 1e6
                figures[name].append((ours, (redis_cpu(client) - redis_before) / messages * 1e6))
    for name, runs in figures.items():
        ours = statistics.median(run[0] for run in runs)
        theirs = statistics.median(run[1] for run in runs)
        print(
            f"single send CPU per message, {name} ({rounds} rounds of {messages}): "
            f"accepting {ours:.0f} µs, Redis {theirs:.0f} µs"
        )


if __name__ == "__main__":
    main()
