"""Fixtures with real parts: a real Redis server, the real app from its factory, real worker processes.

Tests start their own Redis on a free port unless TEST_REDIS_URL is set (the suite flushes that
database between tests, so point it at one you can spare).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import requests

from dispatcher import redis_keys
from dispatcher.settings import load_settings
from scripts.embedded_redis import EmbeddedRedis, free_port
from scripts.procfile import procfile_command

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "test-key-1"
OTHER_API_KEY = "test-key-2"
ADMIN_API_KEY = "test-operator-key"


def wait_for(predicate: Callable[[], object], timeout: float = 15, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def stored_text(redis_client: redis.Redis, message_id: str) -> str | None:
    """The text a message will be sent with (its content key), or None once it no longer holds one."""
    raw = redis_client.get(redis_keys.CONTENT.key(message_id))
    return json.loads(raw)["body"] if raw else None


class Clock:
    """A clock a test moves by hand (`clock.now += 6`), for the store's `clock`: leases run out, slots come
    and days pass without sleeping."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def start_make_run(project: Path, env: dict[str, str], **output) -> subprocess.Popen:
    """`make run`'s launcher (scripts/run_stack.py) in `project`, in a process group of its own, as a terminal runs
    it: `os.killpg(process.pid, signal.SIGINT)` is its Ctrl-C."""
    command = [sys.executable, "-m", "scripts.run_stack"]
    return subprocess.Popen(command, cwd=project, env=env, start_new_session=True, **output)


@pytest.fixture(scope="session")
def project_copy(tmp_path_factory) -> Path:
    """A copy of the project, as a fresh clone would be, with this virtualenv: what `make run` writes under var/
    (its Redis, its stack file) is then the test's own, and a developer's running `make run` is left alone."""
    copy = tmp_path_factory.mktemp("clone") / "project"
    ignored = shutil.ignore_patterns(".venv", "var", ".git", "__pycache__", "*_cache", "test-artifacts", ".env")
    shutil.copytree(ROOT, copy, ignore=ignored)
    (copy / ".venv").symlink_to(Path(sys.executable).parent.parent)
    return copy


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    given = os.environ.get("TEST_REDIS_URL")
    if given:
        yield given
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendonly=False).start()
    yield server.url
    server.stop()


@pytest.fixture
def redis_client(redis_url) -> redis.Redis:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    return client


@pytest.fixture
def base_env(redis_url, redis_client) -> dict[str, str]:
    """The environment every process of a test gets; tests override what they exercise."""
    return {
        "API_KEY": f"{API_KEY}, {OTHER_API_KEY}",
        "ADMIN_API_KEY": ADMIN_API_KEY,
        "ACCOUNT_REQUESTS_PER_SECOND": "0",  # tests fire requests faster than any tenant should; tests/test_quotas.py
        "REDIS_URL": redis_url,
        "APP_ENV": "test",
        "LOG_LEVEL": "info",
        "MOCK_LATENCY_MS": "0",
        "JOB_BACKOFF_DELAY": "100",
        "RECONCILE_INTERVAL": "1",
        "WORKER_CONCURRENCY": "4",
        "PROVIDER_CONNECT_TIMEOUT": "0.5",
        "PROVIDER_READ_TIMEOUT": "1",
    }


@pytest.fixture
def fake_meta():
    """A running fake Meta Cloud API (tests/fakes/meta.py), stopped after the test."""
    from tests.fakes.meta import FakeMeta  # its spec check loads on first use only

    server = FakeMeta().start()
    yield server
    server.stop()


# --- a real browser: Debian's headless Chromium (tests/test_flower.py, tests/test_console_browser.py) ---
ARTIFACTS = ROOT / "test-artifacts"  # screenshots, for a person to look at
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # this machine's network is closed: no calls home
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def debian_program(request, variable: str, program: str, package: str) -> str:
    """A program from Debian's `package`: $`variable`, or /usr/bin/`program`, installed with apt-get when we are root
    and can. A test tool's own browser or driver download does not work on these machines, Debian's package does.
    """
    given = os.environ.get(variable)
    if given:
        if not Path(given).exists():
            pytest.fail(f"{variable}={given} does not exist")
        return given
    found = shutil.which(program) or f"/usr/bin/{program}"
    if Path(found).exists():
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip(f"no {program}: install Debian's {package} package (apt-get install {package}) or set {variable}")
    with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        print(f"installing Debian's {package}: apt-get install -y --no-install-recommends {package}", flush=True)
    install = ["apt-get", "install", "-y", "--no-install-recommends", package]
    done = subprocess.run(install, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:  # a fresh machine may not have the package lists yet
        subprocess.run(["apt-get", "update"], capture_output=True, text=True, timeout=300)
        done = subprocess.run(install, capture_output=True, text=True, timeout=900)
    if done.returncode != 0 or not Path(f"/usr/bin/{program}").exists():
        pytest.fail(f"apt-get install {package} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return f"/usr/bin/{program}"


@pytest.fixture(scope="session")
def chromium(request) -> str:
    return debian_program(request, "CHROMIUM", "chromium", "chromium")


@pytest.fixture(scope="session")
def chromedriver(request, chromium) -> str:
    """The driver Selenium steers Chromium with, from the same Debian release as the browser."""
    return debian_program(request, "CHROMEDRIVER", "chromedriver", "chromium-driver")


@pytest.fixture
def receiver():
    """A running fake callback receiver (tests/fakes/receiver.py), checking our signatures; stopped after."""
    from tests.fakes.receiver import FakeReceiver

    server = FakeReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def fake_evolution():
    """A running fake Evolution API (tests/fakes/evolution.py), stopped after the test."""
    from tests.fakes.evolution import FakeEvolution

    server = FakeEvolution().start()
    yield server
    server.stop()


@pytest.fixture
def make_app(base_env):
    """Build the real Flask app from its factory with `base_env` plus overrides; returns its test client."""
    from dispatcher.api import create_app

    def build(**overrides: str):
        app = create_app(load_settings({**base_env, **overrides}))
        return app.test_client()

    return build


@pytest.fixture
def client(make_app):
    return make_app()


def auth(key: str = API_KEY) -> dict[str, str]:
    return {"X-API-Key": key}


def operator() -> dict[str, str]:
    """The headers of an operator's request (ADMIN_API_KEY)."""
    return auth(ADMIN_API_KEY)


class Process:
    """A child process whose output lines are collected, for waiting on and asserting about."""

    def __init__(self, args: list[str], env: dict[str, str], name: str):
        self.name = name
        self.lines: list[str] = []
        self.popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float = 30) -> None:
        wait_for(lambda: any(text in line for line in self.lines) or self._died(), timeout, what=f"{self.name}: {text}")
        if not any(text in line for line in self.lines):
            raise AssertionError(f"{self.name} exited with {self.popen.returncode}:\n{self.output[-3000:]}")

    def _died(self) -> bool:
        return self.popen.poll() is not None

    def kill9(self) -> None:
        os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.kill9()


@pytest.fixture
def start_worker(base_env):
    """Start real `celery -A tasks worker` processes; all are stopped after the test."""
    workers: list[Process] = []

    def start(**overrides: str) -> Process:
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tasks",
            "worker",
            "--without-mingle",
            "--without-gossip",
            "-n",
            f"test{len(workers)}-{time.monotonic_ns()}@%h",
            "--loglevel=INFO",
        ]
        worker = Process(args, {**base_env, **overrides}, "worker")
        workers.append(worker)
        worker.wait_for_line("ready.")
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def start_callbacks_worker(base_env):
    """Start the Procfile's `callbacks` line: the worker that delivers status callbacks."""
    workers: list[Process] = []

    def start(**overrides: str) -> Process:
        env = {**base_env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", **overrides}
        worker = Process(["bash", "-c", f"exec {procfile_command('callbacks')}"], env, "callbacks")
        workers.append(worker)
        worker.wait_for_line("ready.")
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def start_web(base_env):
    """Start the Procfile's `web` line (the real granian web server) on a free port; returns its base URL
    (and its process, with `with_process=True`)."""
    processes: list[Process] = []

    def start(with_process: bool = False, **overrides: str):
        port = free_port()
        env = {
            **base_env,
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            **overrides,
        }
        web = Process(["bash", "-c", procfile_command("web")], env, "web")
        processes.append(web)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(url) or web._died(), 30, what="the web server to answer")
        if web._died():
            raise AssertionError(f"the web server exited:\n{web.output[-3000:]}")
        return (url, web) if with_process else url

    yield start
    for process in processes:
        process.stop()


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=1).status_code == 200
    except requests.RequestException:
        return False
