"""What a send's claim and its record cost, in this process and in Redis, without a worker or a provider.

Usage: python -m bench.claim_cost [MESSAGES] [ROUNDS]
MESSAGES single messages are accepted, then claimed and recorded `sent` one after another, as a worker's
send does around its provider call. Prints, per message, the wall time of the claim and the record, and the
Redis time of the scripts behind them (INFO commandstats: evalsha's usec_per_call).
"""

from __future__ import annotations

import statistics
import sys
import time

from bench.common import private_redis, service_env
from dispatcher import statuses
from dispatcher.accounts import key_id
from dispatcher.messages import Route
from dispatcher.services import build_services
from dispatcher.settings import load_settings
from tasks.delivery import Outcome, record
from tasks.envelope import publishers


def one_round(url: str, count: int) -> tuple[float, float]:
    """(wall µs per claim + record, Redis µs per script call) for `count` messages on a fresh database."""
    settings = load_settings(service_env(url))
    services = build_services(settings, publishers(settings.queue_name))
    store = services.store
    store.redis.flushdb()
    caller, route = key_id("bench"), Route("mock")
    accept = services.messages.accept
    ids = [accept(caller, "+5564999998888", "bench", f"c-{n}", route).message_id for n in range(count)]
    store.redis.config_resetstat()
    began = time.perf_counter()
    for message_id in ids:
        claim = store.claim(message_id, take_over_expired=True)
        record(store, message_id, Outcome(statuses.SENT, provider_message_id=f"p-{message_id}"), claim.attempt)
    wall = (time.perf_counter() - began) / count * 1e6
    return wall, store.redis.info("commandstats")["cmdstat_evalsha"]["usec_per_call"]


def main(count: int = 3000, rounds: int = 3) -> None:
    with private_redis() as url:
        results = [one_round(url, count) for _ in range(rounds)]
    walls, scripts = zip(*results, strict=True)
    print(
        f"claim + record ({count} messages, {rounds} rounds): wall median {statistics.median(walls):.0f} µs/message, "
        f"Redis {', '.join(f'{usec:.1f}' for usec in scripts)} µs per script call"
    )


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]))
