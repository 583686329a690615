"""Failed messages for operators: listed with filters and a cursor, retried (never twice), canceled before sending."""

from __future__ import annotations

import json

import pytest

from dispatcher import statuses
from tests.conftest import OTHER_API_KEY, auth, wait_for

PHONE = "+5564999998888"


def send(client, external_id: str, **extra) -> str:
    body = {"recipient_phone": PHONE, "message_body": "Olá", "external_id": external_id, **extra}
    answer = client.post("/v1/messages/send", json=body, headers=auth())
    assert answer.status_code == 200, answer.json
    return answer.json["message_id"]


def fail(client, message_id: str, code: str = "63016") -> None:
    """Claim and fail a message through the store's own scripts, as a worker does on a permanent error."""
    store = client.application.extensions["dispatcher"].store
    assert store.claim(message_id, take_over_expired=False).claimed
    error = json.dumps({"kind": "permanent", "code": code, "message": "outside the 24-hour window"})
    assert store.advance(message_id, statuses.FAILED, (statuses.SENDING,), last_error=error) == "ok"


def listing(client, query: str = "", api_key=None) -> dict:
    answer = client.get(f"/v1/messages?status=failed{query}", headers=auth(api_key) if api_key else auth())
    assert answer.status_code == 200, answer.json
    return answer.json


def test_failed_messages_are_listed_page_by_page_with_filters(client):
    ids = [send(client, f"c1_{n}") for n in range(7)]
    for n, message_id in enumerate(ids):
        fail(client, message_id, code="131026" if n % 2 else "63016")
    send(client, "c1_still_queued")

    first = listing(client, "&limit=3")
    assert [m["message_id"] for m in first["messages"]] == ids[:3]
    second = listing(client, f"&limit=3&cursor={first['next_cursor']}")
    third = listing(client, f"&limit=3&cursor={second['next_cursor']}")
    seen = [m["message_id"] for page in (first, second, third) for m in page["messages"]]
    assert seen == ids
    assert third["next_cursor"] is None
    assert all(m["status"] == "failed" for m in first["messages"])

    by_code = listing(client, "&error_code=131026")
    assert [m["message_id"] for m in by_code["messages"]] == ids[1::2]
    assert listing(client, "&provider=twilio")["messages"] == []
    assert listing(client, "&since=2999-01-01T00:00:00Z")["messages"] == []
    assert listing(client, api_key=OTHER_API_KEY)["messages"] == []  # another key's failures are not shown


@pytest.mark.parametrize(
    ("query", "field"),
    [("status=sent", "status"), ("status=failed&since=yesterday", "since"), ("status=failed&cursor=x", "cursor")],
)
def test_bad_listing_queries_are_400(client, query, field):
    answer = client.get(f"/v1/messages?{query}", headers=auth())
    assert answer.status_code == 400
    assert answer.json["field"] == field


def test_a_retry_keeps_the_id_and_history_and_sends_once(make_app, start_worker):
    client = make_app(JOB_ATTEMPTS="1")
    failing = start_worker(MOCK_FAILURE_RATE="1", JOB_ATTEMPTS="1")
    message_id = send(client, "c2_1")
    wait_for(lambda: client.get(f"/v1/messages/{message_id}", headers=auth()).json["status"] == "failed", 20)
    failing.stop()

    start_worker(JOB_ATTEMPTS="1")
    answer = client.post(f"/v1/messages/{message_id}/retry", headers=auth())
    assert answer.status_code == 200, answer.json
    assert answer.json["message_id"] == message_id
    assert answer.json["status"] == "queued"
    sent = wait_for(
        lambda: (m := client.get(f"/v1/messages/{message_id}", headers=auth()).json)["status"] == "sent" and m, 20
    )
    assert [e["status"] for e in sent["history"]] == ["queued", "sending", "failed", "queued", "sending", "sent"]
    assert sent["attempts"] == 1
    assert listing(client)["messages"] == []
    again = client.post(f"/v1/messages/{message_id}/retry", headers=auth())
    assert again.status_code == 409
    assert again.json["current_status"] == "sent"


def test_a_message_the_provider_accepted_is_never_retried(client):
    message_id = send(client, "c3_1")
    store = client.application.extensions["dispatcher"].store
    store.claim(message_id, take_over_expired=False)
    store.advance(message_id, statuses.SENT, (statuses.SENDING,), provider_message_id="wamid.1")
    store.advance(message_id, statuses.FAILED, (statuses.SENT,), last_error=json.dumps({"code": "131026"}))
    answer = client.post(f"/v1/messages/{message_id}/retry", headers=auth())
    assert answer.status_code == 409
    assert answer.json["code"] == "already_sent"
    assert client.get(f"/v1/messages/{message_id}", headers=auth()).json["status"] == "failed"


def test_cancel_a_message_before_it_is_sent(client, start_worker):
    message_id = send(client, "c4_1")
    answer = client.post(f"/v1/messages/{message_id}/cancel", headers=auth())
    assert answer.status_code == 200
    assert answer.json["status"] == "canceled"
    worker = start_worker()
    sent_id = send(client, "c4_2")
    wait_for(lambda: client.get(f"/v1/messages/{sent_id}", headers=auth()).json["status"] == "sent", 20)
    assert client.get(f"/v1/messages/{message_id}", headers=auth()).json["status"] == "canceled"
    assert not [line for line in worker.lines if "[MOCK]" in line and message_id in line]
    refused = client.post(f"/v1/messages/{sent_id}/cancel", headers=auth())
    assert refused.status_code == 409
    assert refused.json["current_status"] == "sent"
    assert client.post("/v1/messages/msg-nope/cancel", headers=auth()).status_code == 404


def test_a_batch_retries_its_failed_rows_and_completes_again(make_app, start_worker):
    client = make_app(JOB_ATTEMPTS="1")
    failing = start_worker(MOCK_FAILURE_RATE="1", JOB_ATTEMPTS="1")
    rows = [{"recipient_phone": PHONE, "message_body": "Oi", "external_id": f"c5_{n}"} for n in range(20)]
    batch_id = client.post("/v1/messages/bulk", json={"messages": rows}, headers=auth()).json["batch_id"]

    def batch():
        return client.get(f"/v1/batches/{batch_id}", headers=auth()).json

    wait_for(lambda: batch()["state"] == "completed", 30, what="the batch to fail through")
    assert batch()["counts"]["failed"] == 20
    failing.stop()

    start_worker(JOB_ATTEMPTS="1")
    answer = client.post(f"/v1/batches/{batch_id}/retry-failed", headers=auth())
    assert answer.json == {"batch_id": batch_id, "retried": 20, "already_sent": 0}
    wait_for(lambda: batch()["counts"].get("sent") == 20 and batch()["state"] == "completed", 30)
    assert "failed" not in batch()["counts"]


def test_job_remove_on_fail_keeps_the_newest_failures_listed(make_app, start_worker):
    client = make_app(JOB_REMOVE_ON_FAIL="3")
    ids = [send(client, f"c6_{n}") for n in range(5)]
    for message_id in ids:
        fail(client, message_id)
    assert len(listing(client)["messages"]) == 5
    start_worker(JOB_REMOVE_ON_FAIL="3")  # its reconciler trims the listing (RECONCILE_INTERVAL=1 in tests)
    wait_for(lambda: [m["message_id"] for m in listing(client)["messages"]] == ids[2:], 15)
    assert client.get(f"/v1/messages/{ids[0]}", headers=auth()).json["status"] == "failed"  # the record stays
