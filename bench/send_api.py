"""API throughput: POST /v1/messages/send from 32 concurrent keep-alive clients for 20 s.

Usage: python -m bench.send_api [SECONDS] [CLIENTS]
Runs the Procfile's `web` line (gunicorn) against a private Redis, with no worker, so the figure is
the API's alone. The client is a small asyncio HTTP/1.1 loop, light enough to leave the CPU to the
server on this 2-core machine. Every request has its own external_id, so every one creates a message.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import sys
import time

from bench.common import API_KEY, private_redis, service_env, start, stop, wait_until
from scripts.embedded_redis import free_port
from scripts.procfile import procfile_command


def _request(port: int, index: int) -> bytes:
    body = json.dumps(
        {"recipient_phone": "+5564999998888", "message_body": "Olá! Bench", "external_id": f"bench-{index}"}
    ).encode()
    head = (
        f"POST /v1/messages/send HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {API_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


_external_ids = itertools.count()  # shared by every run, so no request is a replay


async def _client(port: int, deadline: float, latencies: list[float], statuses: dict[int, int]):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.perf_counter() < deadline:
        began = time.perf_counter()
        writer.write(_request(port, next(_external_ids)))
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - began)
        status = int(status_line.split()[1])
        statuses[status] = statuses.get(status, 0) + 1
    writer.close()


async def _load(port: int, seconds: float, clients: int):
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    began = time.perf_counter()
    await asyncio.gather(*(_client(port, deadline, latencies, statuses) for _ in range(clients)))
    return latencies, statuses, time.perf_counter() - began


def _ready(port: int) -> bool:
    import urllib.request

    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).status == 200
    except OSError:
        return False


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    with private_redis() as url:
        port = free_port()
        env = service_env(url, PORT=str(port), HOST="127.0.0.1")
        web = start(["bash", "-c", f"exec {procfile_command('web')}"], env)
        try:
            wait_until(lambda: _ready(port), 30, "gunicorn")
            asyncio.run(_load(port, 2, clients))  # warm-up
            latencies, statuses, elapsed = asyncio.run(_load(port, seconds, clients))
        finally:
            stop(web)
    cuts = statistics.quantiles(latencies, n=100)
    errors = sum(count for status, count in statuses.items() if status != 200)
    print(
        f"API send ({clients} clients, {seconds:.0f} s, gunicorn from the Procfile): "
        f"{len(latencies) / elapsed:.0f} requests/s, p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms, "
        f"non-200: {errors}"
    )


if __name__ == "__main__":
    main()
