"""Recovery after kill -9: how long a dead worker's batch takes to be sent whole, with the default settings.

Usage: python -m bench.recovery [ROWS] [RUNS] [PROVIDER_LATENCY_MS]
A batch of ROWS (default 1,500) goes to a counting provider (a local bridge that answers in
PROVIDER_LATENCY_MS, default 2, and counts each message it takes); one worker with the default settings
sends it; at 25 % sent the worker is killed with -9 and a new one is started at once. Printed per run:
seconds from the kill to the last row sent, the rows the dead worker held (`sending` at the kill: the
sends in flight, the ambiguous window), and the rows the provider took twice. Nothing but the provider's
URL and the bench's quiet logs differs from the defaults.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.common import private_redis, service_env, start_worker, wait_until
from dispatcher.accounts import key_id
from dispatcher.messages import Route, new_message
from dispatcher.services import build_services
from dispatcher.settings import load_settings
from tasks.envelope import publishers

SECRET = "bench-bridge-secret"


class CountingBridge(ThreadingHTTPServer):
    """The webhook provider's far end: takes each message after `latency` s and counts it by external_id."""

    daemon_threads = True

    def __init__(self, latency: float):
        self.latency = latency
        self.taken: Counter[str] = Counter()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Bridge)

    def handle_error(self, request, client_address):
        pass  # the killed worker's connections reset: expected here


class _Bridge(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        time.sleep(self.server.latency)
        with self.server.lock:
            self.server.taken[body["external_id"]] += 1
        data = json.dumps({"id": f"bridge-{body['message_id']}", "status": "accepted"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_):
        pass


def one_run(rows: int, latency_ms: float) -> dict[str, float]:
    bridge = CountingBridge(latency_ms / 1000)
    threading.Thread(target=bridge.serve_forever, daemon=True).start()
    try:
        with private_redis() as url:
            env = service_env(
                url,
                WHATSAPP_PROVIDER="webhook",
                WEBHOOK_PROVIDER_URL=f"http://127.0.0.1:{bridge.server_port}/send",
                WEBHOOK_PROVIDER_SECRET=SECRET,
                APP_ENV="test",
            )
            settings = load_settings(env)
            services = build_services(settings, publishers(settings.queue_name))
            store, service = services.store, services.messages
            route = Route("webhook")
            batch_id, _ = service.accept_batch(
                key_id("bench"),
                [new_message(key_id("bench"), f"r-{n}", "+5564999998888", f"Olá {n}", route) for n in range(rows)],
                route,
            )
            counts = store.redis
            first = start_worker(env, name="first")
            wait_until(lambda: int(counts.hget(store.batch_key(batch_id), "count_sent") or 0) >= rows // 4, 120, "25 %")
            os.killpg(first.pid, signal.SIGKILL)
            killed = time.monotonic()
            first.wait()
            held = int(counts.hget(store.batch_key(batch_id), "count_sending") or 0)
            second = start_worker(env, name="second")
            try:
                wait_until(lambda: int(counts.hget(store.batch_key(batch_id), "count_sent") or 0) == rows, 300, "all")
                recovered = time.monotonic() - killed
            finally:
                os.killpg(second.pid, signal.SIGKILL)
                second.wait()
            doubled = sum(1 for taken in bridge.taken.values() if taken > 1)
            lost = rows - len(bridge.taken)
            return {"recovered": recovered, "held": held, "doubled": doubled, "lost": lost}
    finally:
        bridge.shutdown()


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1500
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    latency = float(sys.argv[3]) if len(sys.argv) > 3 else 2
    results = [one_run(rows, latency) for _ in range(runs)]
    for result in results:
        print(
            f"recovery: {rows} rows, kill -9 at 25 %: every row sent {result['recovered']:.1f} s after the kill; "
            f"held at the kill {result['held']:.0f}, sent twice {result['doubled']:.0f}, lost {result['lost']:.0f}"
        )
    median = statistics.median(r["recovered"] for r in results)
    worst = max(r["recovered"] for r in results)
    print(f"recovery after kill -9, default settings: median {median:.1f} s, worst {worst:.1f} s (target <= 15 s)")


if __name__ == "__main__":
    main()
