"""A hostile template: a 10,000-row bulk whose 4 KB template never closes its placeholder, while /health
is asked every 10 ms.

Usage: python -m bench.hostile_template [ROWS]
Prints how long the bulk request took and /health's latency meanwhile (web server from the Procfile),
and, for scale, how long the regular expression templates used before took on one row of it.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import threading
import time
import urllib.request

from bench.common import API_KEY, private_redis, service_env, web

HOSTILE = "{{a|" + " " * 4092  # 4,096 characters: the most a template may have
_OLD_PATTERN = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*(?:\|\s*([^{}]*?))?\s*\}\}")


def _health_latencies(port: int, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        began = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as answer:
            answer.read()
        out.append((time.perf_counter() - began) * 1000)
        time.sleep(0.01)


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    body = json.dumps(
        {
            "template": HOSTILE,
            "messages": [{"recipient_phone": f"+55649{n:08d}", "external_id": f"h-{n}"} for n in range(rows)],
        }
    ).encode()
    with private_redis() as redis_url, web(service_env(redis_url)) as port:
        latencies: list[float] = []
        stop = threading.Event()
        poller = threading.Thread(target=_health_latencies, args=(port, stop, latencies))
        poller.start()
        time.sleep(0.2)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/messages/bulk",
            data=body,
            headers={"X-API-Key": API_KEY, "Content-Type": "application/json"},
        )
        began = time.perf_counter()
        with urllib.request.urlopen(request, timeout=600) as answer:
            accepted = json.load(answer)["accepted"]
        elapsed = time.perf_counter() - began
        time.sleep(0.2)
        stop.set()
        poller.join()
    began = time.perf_counter()
    _OLD_PATTERN.sub("", HOSTILE[:2004])  # 2,000 spaces, as the review measured
    old = time.perf_counter() - began
    print(
        f"hostile 4 KB template on a {rows}-row bulk: answered in {elapsed:.3f} s ({accepted} accepted); "
        f"/health meanwhile p50 {statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms "
        f"({len(latencies)} requests); the old pattern on one row (2 KB): {old:.2f} s"
    )


if __name__ == "__main__":
    main()
