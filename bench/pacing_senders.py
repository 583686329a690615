"""Pacing with several senders at once: does each keep its own rate on shared workers?

Usage: python -m bench.pacing_senders [SECONDS] [MESSAGES_EACH]
Three senders paced at 1/s, 5/s and 20/s (burst 1) get MESSAGES_EACH messages each, as batches on
the same queue; two `celery -A tasks worker` processes (default settings) run for SECONDS; each
sender's achieved rate is read from when its messages were claimed for sending.
"""

from __future__ import annotations

import sys
import time

from bench.common import ADMIN_API_KEY, API_KEY, private_redis, sending_times, service_env, start_worker, stop
from dispatcher.api import create_app
from dispatcher.settings import load_settings

RATES = {"slow": 1.0, "medium": 5.0, "fast": 20.0}


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    each = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    with private_redis() as url:
        env = service_env(url, MOCK_LATENCY_MS="0", LOG_LEVEL="warning")
        client = create_app(load_settings(env)).test_client()
        headers = {"X-API-Key": API_KEY}
        batches = {}
        for sender, rate in RATES.items():
            pace = {"rate_per_second": rate, "burst": 1}
            changed = client.put(f"/v1/senders/mock/{sender}", json=pace, headers={"X-API-Key": ADMIN_API_KEY})
            assert changed.status_code == 200, changed.json
            rows = [
                {"recipient_phone": f"+55649{n:08d}", "external_id": f"{sender}-{n}", "message_body": "x"}
                for n in range(each)
            ]
            batches[sender] = client.post(
                "/v1/messages/bulk", json={"sender": sender, "messages": rows}, headers=headers
            ).json["batch_id"]
        workers = [start_worker(env, f"pace{n}") for n in range(2)]
        time.sleep(seconds)  # the measured run itself: the workers send for this long
        for worker in workers:
            stop(worker)
        store = client.application.extensions["dispatcher"].store
        for sender, batch_id in batches.items():
            times = sending_times(store, batch_id, each)
            achieved = (len(times) - 1) / (times[-1] - times[0])
            rate = RATES[sender]
            print(
                f"pacing, three senders on 2 workers for {seconds} s: {sender} at {rate:g}/s achieved "
                f"{achieved:.2f}/s ({(achieved / rate - 1) * 100:+.1f} %, {len(times)} sent)"
            )


if __name__ == "__main__":
    main()
