"""Pacing: one sender at a set rate, served by two worker processes; is the rate held globally?

Usage: python -m bench.pacing [RATE] [SECONDS] [BURST]
Queues RATE * SECONDS messages for one sender as a batch (mock provider, no latency), runs two
`celery -A tasks worker` processes, and reads when each message was claimed for sending: the
achieved rate after the burst, and the busiest one-second window (at most RATE + BURST).
"""

from __future__ import annotations

import sys

from bench.common import API_KEY, private_redis, sending_times, service_env, start_worker, stop, wait_until
from dispatcher.api import create_app
from dispatcher.settings import load_settings


def main() -> None:
    rate = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    burst = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    count = int(rate * seconds)
    with private_redis() as url:
        env = service_env(
            url, MOCK_LATENCY_MS="0", SENDER_RATE_MOCK=str(rate), SENDER_BURST_MOCK=str(burst), LOG_LEVEL="warning"
        )
        client = create_app(load_settings(env)).test_client()
        headers = {"X-API-Key": API_KEY}
        rows = [
            {"recipient_phone": f"+55649{n:08d}", "external_id": f"pace-{n}", "message_body": "x"} for n in range(count)
        ]
        batch_id = client.post("/v1/messages/bulk", json={"sender": "loja-1", "messages": rows}, headers=headers).json[
            "batch_id"
        ]
        workers = [start_worker(env, f"pace{n}") for n in range(2)]
        try:
            wait_until(
                lambda: client.get(f"/v1/batches/{batch_id}", headers=headers).json["state"] == "completed",
                seconds * 3 + 60,
                "the batch",
            )
        finally:
            for worker in workers:
                stop(worker)
        store = client.application.extensions["dispatcher"].store
        times = sending_times(store, batch_id, count)
    paced = times[burst:]  # the burst goes at once; the rest at the rate
    achieved = (len(paced) - 1) / (paced[-1] - paced[0])
    busiest = max(sum(1 for t in times if begin <= t < begin + 1) for begin in times)
    print(
        f"pacing, one sender at {rate:g}/s (burst {burst}), 2 worker processes, {count} messages: "
        f"achieved {achieved:.2f}/s ({(achieved / rate - 1) * 100:+.1f} %), busiest 1-s window {busiest} "
        f"(limit {rate + burst:g})"
    )


if __name__ == "__main__":
    main()
