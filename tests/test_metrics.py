"""/metrics and readiness, through the Procfile's web server with several processes and a real worker."""

from __future__ import annotations

import re

import requests

from tests.conftest import API_KEY, auth, operator, wait_for

PHONE = "+5564999998888"


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus's text format (labels in any order), or None."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match:
            found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
            if all(found.get(key) == value for key, value in labels.items()):
                return float(match.group(2))
    return None


def test_metrics_agree_across_web_processes(start_web, start_worker):
    url = start_web(WEB_CONCURRENCY="3", WEB_THREADS="2", METRICS_TOKEN="scrape-token")
    start_worker()
    for n in range(12):
        body = {"recipient_phone": PHONE, "message_body": "Olá", "external_id": f"m{n}"}
        assert requests.post(f"{url}/v1/messages/send", json=body, headers=auth(), timeout=5).status_code == 200

    def scrape() -> str:
        answer = requests.get(f"{url}/metrics", headers={"Authorization": "Bearer scrape-token"}, timeout=5)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].startswith("text/plain")
        return answer.text

    wait_for(lambda: sample(scrape(), "dispatcher_messages_total", status="sent", provider="mock") == 12, 20)
    for _ in range(6):  # each scrape may be served by another web process: all see the same numbers
        text = scrape()
        assert sample(text, "dispatcher_messages_total", status="accepted", provider="mock") == 12
        assert sample(text, "dispatcher_messages_total", status="sent", provider="mock") == 12
        assert sample(text, "dispatcher_send_duration_seconds_count", provider="mock") == 12
        assert sample(text, "dispatcher_send_duration_seconds_bucket", provider="mock", le="+Inf") == 12
        assert sample(text, "dispatcher_messages_current", status="sent") == 12
        assert sample(text, "dispatcher_queue_depth") == 0
        assert sample(text, "dispatcher_workers_consuming") == 1


def test_metrics_are_not_public(start_web):
    url = start_web(METRICS_TOKEN="scrape-token")
    assert requests.get(f"{url}/metrics", timeout=5).status_code == 401
    wrong = requests.get(f"{url}/metrics", headers={"Authorization": "Bearer guess"}, timeout=5)
    assert wrong.status_code == 401
    assert requests.get(f"{url}/metrics", headers={"X-API-Key": API_KEY}, timeout=5).status_code == 401


def test_without_a_metrics_token_an_api_key_is_needed(client):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=operator()).status_code == 200


def test_readiness_reports_workers_and_the_queue_depth(client, start_worker):
    body = {"recipient_phone": PHONE, "message_body": "Olá", "external_id": "r1"}
    client.post("/v1/messages/send", json=body, headers=auth())
    alone = client.get("/health/ready").json
    assert alone["workers"] == 0
    assert alone["queue_depth"] == 1
    assert "no worker has consumed the queue" in alone["warning"]
    assert "no worker" in client.get("/v1/queue/status", headers=operator()).json["warning"]

    start_worker()
    ready = wait_for(
        lambda: (answer := client.get("/health/ready", headers=operator()).json)["workers_seen"] and answer, 15
    )
    assert ready["status"] == "ok"
    assert "warning" not in ready
    wait_for(lambda: client.get("/health/ready").json["queue_depth"] == 0, 15)
