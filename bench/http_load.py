"""A small asyncio HTTP/1.1 load client: CLIENTS keep-alive connections, each sending its next request as soon
as the answer to the last one is in, for a set time.

Used by bench.send_api and bench.webhooks_in. It is light enough to leave the CPU to the server on this
2-core machine: requests are raw bytes built by the caller (ideally before the run), answers are read by
Content-Length only, and the caller sees each answer's status and body only when it asks to.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Load:
    """What a run measured: every request's latency (seconds), answers by status, and the run's length."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def non_200(self) -> int:
        return sum(count for status, count in self.statuses.items() if status != 200)

    def figures(self) -> str:
        """`N requests/s, p50 x ms, p99 y ms, non-200: n`."""
        cuts = statistics.quantiles(self.latencies, n=100)
        return (
            f"{len(self.latencies) / self.elapsed:.0f} requests/s, p50 {cuts[49] * 1000:.1f} ms, "
            f"p99 {cuts[98] * 1000:.1f} ms, non-200: {self.non_200}"
        )


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """The raw bytes of one POST to 127.0.0.1:`port` (Content-Length added)."""
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{lines}Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def _client(
    port: int,
    deadline: float,
    next_request: Callable[[], bytes],
    load: Load,
    on_answer: Callable[[int, bytes], None] | None,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.perf_counter() < deadline:
        began = time.perf_counter()
        writer.write(next_request())
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = await reader.readexactly(length)
        load.latencies.append(time.perf_counter() - began)
        status = int(status_line.split()[1])
        load.statuses[status] = load.statuses.get(status, 0) + 1
        if on_answer:
            on_answer(status, body)
    writer.close()


async def _load(port, seconds, clients, next_request, on_answer) -> Load:
    load = Load()
    began = time.perf_counter()
    deadline = began + seconds
    await asyncio.gather(*(_client(port, deadline, next_request, load, on_answer) for _ in range(clients)))
    load.elapsed = time.perf_counter() - began
    return load


def run(
    port: int,
    seconds: float,
    clients: int,
    next_request: Callable[[], bytes],
    on_answer: Callable[[int, bytes], None] | None = None,
) -> Load:
    """Load 127.0.0.1:`port` for `seconds` from `clients` connections; `next_request()` gives each request's
    bytes (called once per request, in order, from one thread), `on_answer(status, body)` sees each answer."""
    return asyncio.run(_load(port, seconds, clients, next_request, on_answer))
