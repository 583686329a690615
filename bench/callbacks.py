"""Outbound: how long callback delivery adds between a status change and a healthy receiver getting it.

Usage: python -m bench.callbacks [MESSAGES] [RATE]
Against a private Redis, runs the Procfile's `web` (granian) and `callbacks` lines and one worker
(mock provider, MOCK_LATENCY_MS=0), and a receiver in this process (a threaded HTTP server on 127.0.0.1
that checks each callback's signature with dispatcher.signatures.verify and answers 204). MESSAGES
messages (default 2000) are sent through POST /v1/messages/send at a steady RATE per second (default
100), each with callback_url = the receiver. For each `message.sent` event the added delay is its
arrival at the receiver (body read) minus its `at`, the moment the status changed in Redis (written in
the same Lua script that queued the event; ISO with milliseconds, truncated, so up to 1 ms is added).
It covers the callbacks worker's release loop (a poll every 0.2 s), the Celery task's trip through
Redis, and the signed POST. Printed: p50/p95/p99/max of that delay, and how many events arrived.
"""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.common import API_KEY, private_redis, service_env, start, start_worker, stop, wait_until, web
from dispatcher import signatures
from scripts.procfile import procfile_command

SECRET = "bench-webhook-secret-0123456789"


class Receiver(ThreadingHTTPServer):
    """Records, per event_id, when it arrived; counts events by type and bad signatures."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.delays: dict[str, float] = {}  # event_id of a message.sent → seconds after its `at`
        self.types: dict[str, int] = {}
        self.unsigned = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/callbacks"

    def reset(self) -> None:
        with self.lock:
            self.delays, self.types, self.unsigned = {}, {}, 0

    def record(self, body: bytes, arrived: float, signed: bool) -> None:
        event = json.loads(body)
        at = datetime.fromisoformat(event["at"].replace("Z", "+00:00")).timestamp()
        with self.lock:
            self.unsigned += not signed
            self.types[event["type"]] = self.types.get(event["type"], 0) + 1
            if event["type"] == "message.sent":
                self.delays[event["event_id"]] = arrived - at


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the callbacks worker's requests.Session expects

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        arrived = time.time()
        signed = signatures.verify(
            SECRET, body, self.headers.get(signatures.TIMESTAMP_HEADER), self.headers.get(signatures.SIGNATURE_HEADER)
        )
        self.server.record(body, arrived, signed)
        self.send_response(204 if signed else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def send(port: int, count: int, rate: float, callback_url: str, prefix: str = "callback") -> int:
    """POST `count` messages, one every 1/`rate` s, on one keep-alive connection; returns the non-200 answers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
    refused = 0
    began = time.monotonic()
    for index in range(count):
        time.sleep(max(0.0, began + index / rate - time.monotonic()))
        body = {
            "recipient_phone": "+5564999998888",
            "message_body": "Olá! Bench",
            "external_id": f"{prefix}-{index}",
            "callback_url": callback_url,
        }
        connection.request("POST", "/v1/messages/send", json.dumps(body), headers)
        response = connection.getresponse()
        response.read()
        refused += response.status != 200
    connection.close()
    return refused


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 100
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    with private_redis() as url:
        env = service_env(
            url, MOCK_LATENCY_MS="0", WEBHOOK_SECRET=SECRET, CALLBACK_URL_ALLOWLIST="127.0.0.1", LOG_LEVEL="warning"
        )
        callbacks = start(["bash", "-c", f"exec {procfile_command('callbacks')}"], env)
        worker = start_worker(env)
        try:
            with web(env) as port:
                # Warm-up: measure once both Celery processes are up and the receiver's connections are open.
                send(port, 20, rate, receiver.url, "warm-up")
                wait_until(lambda: len(receiver.delays) >= 20, 60, "the warm-up callbacks")
                receiver.reset()
                refused = send(port, count, rate, receiver.url)
            deadline = time.monotonic() + 60  # then report what is missing
            while len(receiver.delays) < count - refused and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop(worker)
            stop(callbacks)
    receiver.shutdown()
    delays = sorted(receiver.delays.values())
    if len(delays) < 2:
        sys.exit(f"only {len(delays)} of {count} message.sent callbacks arrived (API refused {refused})")
    cuts = statistics.quantiles(delays, n=100)
    ms = {name: value * 1000 for name, value in (("p50", cuts[49]), ("p95", cuts[94]), ("p99", cuts[98]))}
    received = len(delays)
    note = "" if received == count else f" (MISSING {count - received}; API refused {refused})"
    extra = f", bad signatures: {receiver.unsigned}" if receiver.unsigned else ""
    print(
        f"Status callbacks, {count} messages at {rate:g}/s (one worker, the Procfile's callbacks process): "
        f"added delay p50 {ms['p50']:.0f} ms, p95 {ms['p95']:.0f} ms, p99 {ms['p99']:.0f} ms, "
        f"max {delays[-1] * 1000:.0f} ms; message.sent received {received}/{count}{note}{extra}"
    )


if __name__ == "__main__":
    main()
