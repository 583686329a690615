"""Outbound: what a receiver answering a huge body costs the callbacks worker's memory.

Usage: python -m bench.callback_memory [DELIVERIES] [MIB]
Against a private Redis, runs the Procfile's `web` (granian) and `callbacks` lines and one worker (mock
provider, MOCK_LATENCY_MS=0), and a receiver in this process that answers each callback 200 with a body
of MIB MiB (default 200), generated as it goes out, as fast as the worker takes it. After a warm-up (two
callbacks answered 204, so the worker's modules and connection pool are loaded), DELIVERIES messages
(default 5) are sent one after another, each waiting for its callback to be recorded; the worker's
resident memory (its process and any children, from /proc) is sampled every 20 ms meanwhile. Printed:
its growth at the peak over the settled warm-up figure (target: under 16 MiB), and the most a delivery
made the receiver send (what the worker read, plus what the sockets' buffers held).
"""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.common import ADMIN_API_KEY, API_KEY, private_redis, service_env, start, start_worker, stop, wait_until, web
from bench.load import rss_bytes
from scripts.procfile import procfile_command

SECRET = "bench-webhook-secret-0123456789"
MIB = 1024 * 1024


class Receiver(ThreadingHTTPServer):
    """Answers /huge with a 200 of `size` bytes and /small with a 204; records what each /huge answer sent."""

    def __init__(self, size: int):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.size = size
        self.received = 0  # callbacks that reached us
        self.sent: list[int] = []  # bytes of body sent, per /huge delivery, once it ended

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{path}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received += 1
        if self.path != "/huge":
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(self.server.size))
        self.end_headers()
        chunk, sent = b"x" * 65536, 0
        try:
            while sent < self.server.size:
                self.wfile.write(chunk[: self.server.size - sent])
                sent += min(len(chunk), self.server.size - sent)
        except OSError:
            self.close_connection = True  # the worker stopped reading and closed
        finally:
            self.server.sent.append(sent)

    def log_message(self, *args):
        pass


class Peak:
    """The largest resident memory of a process tree, sampled every 20 ms in a thread."""

    def __init__(self, pid: int):
        self.pid, self.bytes, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.bytes = max(self.bytes, rss_bytes(self.pid))


def waiting(port: int) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/queue/status", headers={"X-API-Key": ADMIN_API_KEY})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)["callbacks_waiting"]


def deliver(port: int, receiver: Receiver, external_id: str, callback_url: str) -> None:
    """Send one message with `callback_url` and wait until its callback reached the receiver and was recorded."""
    received = receiver.received
    body = {"recipient_phone": "+5564999998888", "message_body": "Olá", "external_id": external_id}
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/messages/send",
        json.dumps({**body, "callback_url": callback_url}).encode(),
        {"X-API-Key": API_KEY, "Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).read()
    wait_until(lambda: receiver.received > received and waiting(port) == 0, 120, f"the callback of {external_id}")


def settled_rss(pid: int) -> int:
    """The process tree's resident memory once it stops moving (two readings 0.5 s apart within 1 MiB)."""
    previous = rss_bytes(pid)
    while True:
        time.sleep(0.5)  # a sampling period, not a wait for anything
        current = rss_bytes(pid)
        if abs(current - previous) < MIB:
            return current
        previous = current


def main() -> None:
    deliveries = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    size = int(float(sys.argv[2]) * MIB) if len(sys.argv) > 2 else 200 * MIB
    receiver = Receiver(size)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    with private_redis() as url:
        env = service_env(
            url, MOCK_LATENCY_MS="0", WEBHOOK_SECRET=SECRET, CALLBACK_URL_ALLOWLIST="127.0.0.1", LOG_LEVEL="warning"
        )
        callbacks = start(["bash", "-c", f"exec {procfile_command('callbacks')}"], env)
        worker = start_worker(env)
        try:
            with web(env) as port:
                for n in range(2):
                    deliver(port, receiver, f"warm-up-{n}", receiver.url("small"))
                baseline = settled_rss(callbacks.pid)
                with Peak(callbacks.pid) as peak:
                    for n in range(deliveries):
                        deliver(port, receiver, f"huge-{n}", receiver.url("huge"))
        finally:
            stop(worker)
            stop(callbacks)
    receiver.shutdown()
    growth = (peak.bytes - baseline) / MIB
    print(
        f"Callbacks worker memory, {deliveries} deliveries to a receiver answering {size / MIB:.0f} MiB each: "
        f"RSS {baseline / MIB:.0f} MiB settled, peak {growth:+.1f} MiB (target < 16 MiB); "
        f"the receiver sent at most {max(receiver.sent, default=0) / MIB:.1f} MiB of a body "
        f"({len(receiver.sent)}/{deliveries} answered)"
    )


if __name__ == "__main__":
    main()
