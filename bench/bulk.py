"""Bulk: how long a 10,000-row POST /v1/messages/bulk takes to answer, and how fast one worker drains it.

Usage: python -m bench.bulk [ROWS] [RUNS]
The Procfile's web server takes RUNS requests of ROWS rows each (every row new, validated, templated,
durable before the answer); then one `celery -A tasks worker` with the default settings
(threads, WORKER_CONCURRENCY=5) and MOCK_LATENCY_MS=0 sends the last batch.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import urllib.request

from bench.common import API_KEY, private_redis, service_env, start, start_worker, stop, wait_until
from dispatcher.api.intake import prepare_row
from dispatcher.messages import Route
from dispatcher.settings import load_settings
from dispatcher.templates import Template
from scripts.embedded_redis import free_port
from scripts.procfile import procfile_command


def _post(url: str, body: bytes) -> dict:
    request = urllib.request.Request(url, data=body, headers={"X-API-Key": API_KEY, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.load(answer)


def _get(url: str) -> dict:
    request = urllib.request.Request(url, headers={"X-API-Key": API_KEY})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def _ready(base: str) -> bool:
    try:
        return _get(f"{base}/health")["status"] == "ok"
    except OSError:
        return False


def campaign(rows: int, run: int) -> bytes:
    return json.dumps(
        {
            "template": "Olá {{ name }}! Sua consulta é {{day|amanhã}}.",
            "messages": [
                {
                    "recipient_phone": f"+55649{n:08d}",
                    "external_id": f"campaign_{run}_contact_{n}",
                    "variables": {"name": f"Contato {n}"},
                }
                for n in range(rows)
            ],
        }
    ).encode()


def validation_cost(rows: int, redis_url: str) -> float:
    """Microseconds per row to validate, template and normalise a bulk row (no Redis, no HTTP)."""
    settings = load_settings(service_env(redis_url))
    body = json.loads(campaign(rows, 0))
    route = Route("mock")
    began = time.perf_counter()
    template = Template(body["template"])
    for row in body["messages"]:
        prepare_row(row, template, settings, route, "bench")
    return (time.perf_counter() - began) / rows * 1e6


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with private_redis() as redis_url:
        cost = validation_cost(rows, redis_url)
        print(f"bulk row validation (schema, template, phone, fingerprint): {cost:.1f} µs/row")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = service_env(redis_url, PORT=str(port), HOST="127.0.0.1", MOCK_LATENCY_MS="0")
        web = start(["bash", "-c", procfile_command("web")], env)
        try:
            wait_until(lambda: _ready(base), 30, "the web server")
            _post(f"{base}/v1/messages/bulk", campaign(100, -1))  # warm-up
            timings = []
            for run in range(runs):
                body = campaign(rows, run)
                began = time.perf_counter()
                answer = _post(f"{base}/v1/messages/bulk", body)
                timings.append(time.perf_counter() - began)
                assert answer["accepted"] == rows, answer["rejected"]
            print(
                f"bulk accept ({rows} rows, {runs} runs, web from the Procfile): "
                f"median {statistics.median(timings):.3f} s, best {min(timings):.3f} s, "
                f"{rows / statistics.median(timings):.0f} rows/s"
            )
            batch_url = f"{base}/v1/batches/{answer['batch_id']}"
            worker = start_worker(env)
            try:
                wait_until(lambda: _get(batch_url)["progress"] > 0, 60, "the first message")
                began, first = time.perf_counter(), _get(batch_url)["progress"]
                wait_until(lambda: _get(batch_url)["state"] == "completed", 600, "the batch to finish")
                elapsed = time.perf_counter() - began
            finally:
                stop(worker)
            counts = _get(batch_url)["counts"]
            print(
                f"bulk drain ({rows} rows, one worker, default settings, MOCK_LATENCY_MS=0): "
                f"{rows * (1 - first) / elapsed:.0f} messages/s, counts {counts}"
            )
        finally:
            stop(web)


if __name__ == "__main__":
    main()
