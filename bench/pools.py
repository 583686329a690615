"""Sender pools: does a pool of N members send at N times the member's rate, and what does choosing cost Redis?

Usage: python -m bench.pools [SECONDS] [MEMBER_RATE]
For N = 3 and 10, a pool of N mock senders, each paced at MEMBER_RATE/s (burst 1), gets a batch of more
messages than it can send in SECONDS; two `celery -A tasks worker` processes (default settings) run for
SECONDS, and the pool's rate is read from when its messages were claimed for sending (the first N go at
once, on each member's burst). Then, in this process, the Redis time of the claim script (INFO commandstats)
for 3,000 messages through a pool of 3 and of 10 unpaced members beside 3,000 through one sender, alternated:
the difference is what choosing a member costs.
"""

from __future__ import annotations

import statistics
import sys
import time

from bench.common import ADMIN_API_KEY, API_KEY, private_redis, sending_times, service_env, start_worker, stop
from dispatcher.accounts import key_id
from dispatcher.api import create_app
from dispatcher.messages import Route
from dispatcher.pools import Member, Pool
from dispatcher.services import build_services
from dispatcher.settings import load_settings
from tasks.envelope import publishers


def pool_rate(members: int, member_rate: float, seconds: int) -> tuple[float, int]:
    """(messages/s the pool sent, how many) with `members` members at `member_rate` each."""
    with private_redis() as url:
        env = service_env(url, MOCK_LATENCY_MS="0", LOG_LEVEL="warning")
        client = create_app(load_settings(env)).test_client()
        body = {"members": [{"provider": "mock", "sender": f"chip-{n}"} for n in range(members)]}
        assert client.put("/v1/pools/bench", json=body, headers={"X-API-Key": ADMIN_API_KEY}).status_code == 201
        for n in range(members):
            pace = {"rate_per_second": member_rate, "burst": 1}
            client.put(f"/v1/senders/mock/chip-{n}", json=pace, headers={"X-API-Key": ADMIN_API_KEY})
        count = int(members * member_rate * seconds * 1.5)
        rows = [
            {"recipient_phone": f"+55649{n:08d}", "external_id": f"p-{n}", "message_body": "x"} for n in range(count)
        ]
        answer = client.post(
            "/v1/messages/bulk", json={"pool": "bench", "messages": rows}, headers={"X-API-Key": API_KEY}
        )
        batch_id = answer.json["batch_id"]
        workers = [start_worker(env, f"pool{n}") for n in range(2)]
        time.sleep(seconds)  # the measured run itself: the workers send for this long
        for worker in workers:
            stop(worker)
        times = sending_times(client.application.extensions["dispatcher"].store, batch_id, count)
        return (len(times) - members) / (times[-1] - times[members - 1]), len(times)


def claim_script_usec(members: int, count: int = 3000) -> float:
    """Redis µs per claim script call, for `count` messages through a pool of `members` unpaced members (0: one
    sender, no pool)."""
    with private_redis() as url:
        settings = load_settings(service_env(url))
        services = build_services(settings, publishers(settings.queue_name))
        store = services.store
        if members:
            services.pools.save(Pool("bench", tuple(Member("mock", f"chip-{n}") for n in range(members))))
        route = Route("", pool="bench") if members else Route("mock", sender="chip-0")
        ids = [
            services.messages.accept(key_id("bench"), "+5564999998888", "x", f"c-{n}", route).message_id
            for n in range(count)
        ]
        store.redis.config_resetstat()
        for message_id in ids:
            store.claim(message_id, take_over_expired=True)
        return store.redis.info("commandstats")["cmdstat_evalsha"]["usec_per_call"]


def main(seconds: int = 20, member_rate: float = 5.0) -> None:
    for members in (3, 10):
        rate, sent = pool_rate(members, member_rate, seconds)
        target = members * member_rate
        print(
            f"pool of {members} at {member_rate:g}/s each, 2 workers, {seconds} s: {rate:.2f} messages/s "
            f"({(rate / target - 1) * 100:+.1f} % of {target:g}/s, {sent} sent)"
        )
    # Alternated, five rounds: this machine's noise moves every figure together, the differences less.
    rounds = [{members: claim_script_usec(members) for members in (0, 3, 10)} for _ in range(5)]
    fixed = statistics.median(usec[0] for usec in rounds)
    for members in (3, 10):
        pooled = statistics.median(usec[members] for usec in rounds)
        cost = statistics.median(usec[members] - usec[0] for usec in rounds)
        print(
            f"claim script, Redis time per message (median of 5 alternated runs of 3000): one sender {fixed:.1f} µs, "
            f"a pool of {members} {pooled:.1f} µs: choosing a member costs {cost:+.1f} µs"
        )


if __name__ == "__main__":
    main(*(conv(arg) for conv, arg in zip((int, float), sys.argv[1:3], strict=False)))
