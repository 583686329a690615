"""send_at: a message (or a whole batch) held until its time, in Redis, not in a worker."""

from datetime import UTC, datetime, timedelta

from tests.conftest import auth, operator, wait_for

BODY = {"recipient_phone": "+5564999998888", "message_body": "Bom dia!", "external_id": "sched-1"}


def at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).astimezone().isoformat()


def message(client, message_id):
    return client.get(f"/v1/messages/{message_id}", headers=auth()).json


def sending_at(record):
    stamp = next(e["at"] for e in record["history"] if e["status"] == "sending")
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_a_message_waits_for_send_at_even_if_its_worker_dies(client, start_worker):
    due = datetime.now(UTC) + timedelta(seconds=3)
    answer = client.post("/v1/messages/send", json={**BODY, "send_at": due.isoformat()}, headers=auth()).json
    assert answer["status"] == "scheduled"
    message_id = answer["message_id"]
    first = start_worker()
    scheduled = message(client, message_id)
    assert scheduled["status"] == "scheduled"
    assert scheduled["history"][0]["status"] == "scheduled"
    assert client.get("/v1/queue/status", headers=operator()).json["held_by_schedule"] == 1
    first.kill9()  # nothing held in the worker: the schedule lives in Redis
    start_worker()
    sent = wait_for(lambda: (m := message(client, message_id))["status"] == "sent" and m, 15, what="the send")
    assert sending_at(sent) >= due - timedelta(milliseconds=50)


def test_a_past_send_at_sends_now(client):
    answer = client.post("/v1/messages/send", json={**BODY, "send_at": at(-60)}, headers=auth()).json
    assert answer["status"] == "queued"


def test_send_at_needs_a_time_zone(client):
    answer = client.post("/v1/messages/send", json={**BODY, "send_at": "2026-12-01T09:00:00"}, headers=auth())
    assert answer.status_code == 400
    assert answer.json["field"] == "send_at" and "time zone" in answer.json["error"]


def test_a_scheduled_batch_starts_at_its_time(client, start_worker):
    due = datetime.now(UTC) + timedelta(seconds=2)
    answer = client.post(
        "/v1/messages/bulk",
        headers=auth(),
        json={
            "send_at": due.isoformat(),
            "messages": [
                {"recipient_phone": f"+55649{n:08d}", "external_id": f"s-{n}", "message_body": "Oi"} for n in range(20)
            ],
        },
    )
    batch_id = answer.json["batch_id"]
    start_worker()
    assert client.get(f"/v1/batches/{batch_id}", headers=auth()).json["counts"] == {"scheduled": 20}
    wait_for(
        lambda: client.get(f"/v1/batches/{batch_id}", headers=auth()).json["state"] == "completed",
        15,
        what="the scheduled batch",
    )
    first = message(client, answer.json["results"][0]["message_id"])
    assert sending_at(first) >= due - timedelta(milliseconds=50)


def test_a_scheduled_batch_can_be_canceled_before_its_time(client):
    answer = client.post(
        "/v1/messages/bulk",
        headers=auth(),
        json={
            "send_at": at(3600),
            "messages": [{"recipient_phone": "+5564999998888", "external_id": "c-1", "message_body": "Oi"}],
        },
    ).json
    canceled = client.post(f"/v1/batches/{answer['batch_id']}/cancel", headers=auth()).json
    assert canceled["counts"] == {"canceled": 1} and canceled["state"] == "canceled"
