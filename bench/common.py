"""What the benchmarks share: a private Redis, the service's processes, and the environment they run with."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import redis

from dispatcher.api.intake import prepare_row
from dispatcher.messages import Route
from dispatcher.templates import Template
from scripts.embedded_redis import EmbeddedRedis, free_port
from scripts.procfile import procfile_command

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench-key-0123456789"
ADMIN_API_KEY = "bench-operator-key-0123456789"  # for the operator routes (senders, the queue)


@contextmanager
def private_redis():
    """A fresh Redis without persistence (as the reference benchmarks run), stopped afterwards."""
    with tempfile.TemporaryDirectory() as directory:
        server = EmbeddedRedis(directory, appendonly=False).start()
        try:
            yield server.url
        finally:
            server.stop()


def service_env(redis_url: str, **overrides: str) -> dict[str, str]:
    return {
        **os.environ,
        "API_KEY": API_KEY,
        "ADMIN_API_KEY": ADMIN_API_KEY,
        "REDIS_URL": redis_url,
        # The benches drive the API faster than an account's default quota lets it; bench.send_api measures
        # what the quota costs.
        "ACCOUNT_REQUESTS_PER_SECOND": "0",
        "LOG_LEVEL": "warning",
        "WORKER_API_CALL_DELAY": "0",
        **overrides,
    }


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    path = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env={**env, "PATH": path},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until(predicate, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _ready(port: int) -> bool:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).status == 200
    except OSError:
        return False


@contextmanager
def web(env: dict[str, str]) -> Iterator[int]:
    """The Procfile's `web` process (granian) on a free port of 127.0.0.1, answering /health; yields the port."""
    with web_process(env) as (port, _):
        yield port


@contextmanager
def web_process(env: dict[str, str]) -> Iterator[tuple[int, subprocess.Popen]]:
    """As `web`, also yielding the web server's main process (the line's own `exec` makes granian the one started)."""
    port = free_port()
    process = start(["bash", "-c", procfile_command("web")], {**env, "PORT": str(port), "HOST": "127.0.0.1"})
    try:
        wait_until(lambda: _ready(port), 30, "the web server")
        yield port, process
    finally:
        stop(process)


def redis_cpu(client) -> float:
    """Redis's own CPU seconds so far (INFO cpu), to divide a measured stretch's by its messages."""
    info = client.info("cpu")
    return info["used_cpu_sys"] + info["used_cpu_user"]


def redis_commands(client) -> int:
    """The commands Redis has run so far (INFO commandstats), the calls a script makes inside it included."""
    return sum(stat["calls"] for stat in client.info("commandstats").values())


def pending(redis_url: str) -> int:
    return redis.Redis.from_url(redis_url).zcard("dispatch:pending")


def start_worker(env: dict[str, str], name: str = "bench", pool: str | None = None) -> subprocess.Popen:
    """One `celery -A tasks worker` process, quiet, without the start-up chatter between workers."""
    args = [
        "celery",
        "-A",
        "tasks",
        "worker",
        "--without-mingle",
        "--without-gossip",
        "--loglevel=WARNING",
        "-n",
        f"{name}@%h",
    ]
    return start([*args, "-P", pool] if pool else args, env)


def accept_campaign(services, caller: str, text: str, rows: int, row_for, per_request: int = 10_000) -> list[str]:
    """`rows` templated bulk rows (`row_for(n)`: the raw row n) accepted through the API's own path, in requests of
    `per_request` rows, on the mock provider; returns the batch ids."""
    route, template = Route("mock"), Template(text)
    batches = []
    for start in range(0, rows, per_request):
        new = [
            prepare_row(row_for(n), template, services.settings, route, caller)
            for n in range(start, min(start + per_request, rows))
        ]
        batches.append(services.messages.accept_batch(caller, new, route)[0])
    return batches


def sending_times(store, batch_id: str, count: int) -> list[float]:
    """When each of the batch's messages was claimed for sending (unix seconds, sorted)."""
    return sorted(
        datetime.fromisoformat(entry["at"].replace("Z", "+00:00")).timestamp()
        for message in store.get_many(store.batch_message_ids(batch_id, 0, count))
        for entry in (message.history if message else [])
        if entry["status"] == "sending"
    )
