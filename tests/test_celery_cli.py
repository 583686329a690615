"""The operator's commands, run as operators run them: the real `celery -A tasks ...` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dispatcher import statuses
from tests.conftest import ROOT, auth, wait_for

PHONE = "+5564999998888"


def celery(base_env, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, **base_env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    result = subprocess.run(
        ["celery", "-A", "tasks", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def failed_message(client, external_id: str, batch: bool = False) -> str:
    """A message failed through the store's own scripts, as a worker fails it on a permanent error."""
    body = {"recipient_phone": PHONE, "message_body": "Olá", "external_id": external_id}
    message_id = client.post("/v1/messages/send", json=body, headers=auth()).json["message_id"]
    store = client.application.extensions["dispatcher"].store
    store.claim(message_id, take_over_expired=False)
    error = json.dumps({"kind": "permanent", "code": "63016", "message": "outside the 24-hour window"})
    store.advance(message_id, statuses.FAILED, (statuses.SENDING,), last_error=error)
    return message_id


def test_the_dispatcher_command_has_help(base_env):
    answer = celery(base_env, "dispatcher", "--help").stdout
    for command in ("failed", "retry", "retry-batch", "stats"):
        assert command in answer


def test_failed_messages_are_listed_and_retried_from_the_cli(client, base_env, start_worker):
    first, second = failed_message(client, "cli_1"), failed_message(client, "cli_2")
    listing = celery(base_env, "dispatcher", "failed").stdout
    assert first in listing and second in listing
    assert "63016: outside the 24-hour window" in listing
    assert "2 failed" in listing

    start_worker()
    assert f"{first} queued again" in celery(base_env, "dispatcher", "retry", first).stdout
    wait_for(lambda: client.get(f"/v1/messages/{first}", headers=auth()).json["status"] == "sent", 20)
    refused = celery(base_env, "dispatcher", "retry", first, check=False)
    assert refused.returncode != 0
    assert "not retried: sent" in refused.stderr

    stats = celery(base_env, "dispatcher", "stats").stdout
    assert [line.split()[-1] for line in stats.splitlines() if line.startswith("failed")] == ["1"]
    assert "workers online" in stats


def test_a_batch_is_retried_from_the_cli(make_app, base_env, start_worker):
    client = make_app(JOB_ATTEMPTS="1")
    failing = start_worker(MOCK_FAILURE_RATE="1", JOB_ATTEMPTS="1")
    rows = [{"recipient_phone": PHONE, "message_body": "Oi", "external_id": f"cli_b{n}"} for n in range(5)]
    batch_id = client.post("/v1/messages/bulk", json={"messages": rows}, headers=auth()).json["batch_id"]
    wait_for(lambda: client.get(f"/v1/batches/{batch_id}", headers=auth()).json["state"] == "completed", 30)
    failing.stop()
    assert "5 queued again" in celery(base_env, "dispatcher", "retry-batch", batch_id).stdout
    start_worker()
    wait_for(lambda: client.get(f"/v1/batches/{batch_id}", headers=auth()).json["counts"].get("sent") == 5, 30)


def test_celery_inspect_still_works_beside_ours(base_env, start_worker):
    start_worker()
    answer = celery(base_env, "inspect", "ping", "--timeout", "5").stdout
    assert "pong" in answer
