"""`make run`'s launcher: the whole stack on an embedded Redis, and Ctrl-C stops all of it."""

import os
import signal
import socket
import subprocess

import requests

from scripts.embedded_redis import free_port
from tests.conftest import start_make_run, wait_for


def _get(url, **kwargs):
    try:
        return requests.get(url, timeout=1, **kwargs)
    except requests.RequestException:
        return None


def test_the_whole_stack_runs_and_stops_on_ctrl_c(tmp_path, project_copy):
    port, flower_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("REDIS_", "API_KEY"))}
    env.update(
        PORT=str(port),
        FLOWER_PORT=str(flower_port),
        EMBEDDED_REDIS_DIR=str(tmp_path / "redis"),
        MOCK_LATENCY_MS="0",
        FLOWER_BASIC_AUTH="ops:secret",
    )
    stack = start_make_run(project_copy, env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _get(f"{base}/health"), 60, interval=0.2, what="the API")
        answer = requests.post(
            f"{base}/v1/messages/send",
            json={"recipient_phone": "+5564999998888", "message_body": "Olá", "external_id": "make-run-1"},
            headers={"X-API-Key": "dev-api-key-12345"},
            timeout=5,
        )
        assert answer.status_code == 200
        message_url = f"{base}/v1/messages/{answer.json()['message_id']}"
        headers = {"X-API-Key": "dev-api-key-12345"}
        wait_for(lambda: _get(message_url, headers=headers).json()["status"] == "sent", 60, what="the worker")
        flower = f"http://127.0.0.1:{flower_port}/"
        wait_for(lambda: _get(flower) is not None, 60, interval=0.2, what="Flower")
        assert _get(flower).status_code == 401
        assert _get(flower, auth=("ops", "secret")).status_code == 200
        assert (tmp_path / "redis" / "appendonly.aof").exists() or (tmp_path / "redis" / "appendonlydir").exists()
    finally:
        os.killpg(stack.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        output, _ = stack.communicate(timeout=60)
    redis_line = next(line for line in output.splitlines() if line.startswith("embedded Redis on"))
    redis_port = int(redis_line.split(":")[2].split("/")[0])
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", redis_port)) != 0, "the embedded Redis is still running"
