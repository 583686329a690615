"""Batches through a real worker: exact counts, pause, resume, cancel, listing."""

import time

from tests.conftest import auth, wait_for


def start_batch(client, rows, tag: str = "c", **extra):
    body = {
        "template": "Olá {{name}}",
        "messages": [
            {"recipient_phone": f"+55649{n:08d}", "external_id": f"{tag}_{n}", "variables": {"name": f"N{n}"}}
            for n in range(rows)
        ],
        **extra,
    }
    answer = client.post("/v1/messages/bulk", json=body, headers=auth())
    assert answer.status_code == 200 and answer.json["accepted"] == rows
    return answer.json["batch_id"]


def batch(client, batch_id):
    return client.get(f"/v1/batches/{batch_id}", headers=auth()).json


def control(client, batch_id, action):
    return client.post(f"/v1/batches/{batch_id}/{action}", headers=auth())


def wait_for_state(client, batch_id, state, timeout=60):
    return wait_for(
        lambda: (b := batch(client, batch_id))["state"] == state and b,
        timeout,
        what=f"batch {state} (now {batch(client, batch_id)})",
    )


def sends_in(worker):
    return sum("[MOCK]" in line for line in worker.lines)


def test_a_1000_row_batch_ends_with_exact_counts(client, start_worker):
    worker = start_worker()
    batch_id = start_batch(client, 1000)
    done = wait_for_state(client, batch_id, "completed")
    assert done["total"] == 1000
    assert done["counts"] == {"sent": 1000}
    assert done["progress"] == 1.0
    assert done["finished_at"] is not None
    wait_for(lambda: sends_in(worker) == 1000, what="the worker's log")
    listed = client.get(f"/v1/batches/{batch_id}/messages", query_string={"limit": 5}, headers=auth()).json
    assert [m["external_id"] for m in listed["messages"]] == [f"c_{n}" for n in range(5)]
    assert listed["next_cursor"] == "5"


def test_pause_stops_sends_and_resume_finishes_every_row_once(make_app, start_worker):
    client = make_app(BULK_CHUNK_SIZE="50")
    worker = start_worker(MOCK_LATENCY_MS="20")
    batch_id = start_batch(client, 300)
    wait_for(lambda: batch(client, batch_id)["counts"].get("sent", 0) >= 20, what="some sends")
    paused = control(client, batch_id, "pause")
    assert paused.status_code == 200 and paused.json["state"] == "paused"
    time.sleep(1)  # sends in flight may finish within a second of the pause
    settled = sends_in(worker)
    time.sleep(1.5)  # the claim: nothing more is sent while paused
    assert sends_in(worker) == settled
    assert batch(client, batch_id)["counts"].get("queued", 0) > 0
    assert control(client, batch_id, "pause").status_code == 409
    resumed = control(client, batch_id, "resume")
    assert resumed.status_code == 200 and resumed.json["state"] == "running"
    done = wait_for_state(client, batch_id, "completed")
    assert done["counts"] == {"sent": 300}
    wait_for(lambda: sends_in(worker) == 300, what="one send per row")
    time.sleep(0.5)
    assert sends_in(worker) == 300  # none twice


def test_cancel_marks_unsent_rows_and_sends_nothing_more(make_app, start_worker):
    client = make_app(BULK_CHUNK_SIZE="50")
    worker = start_worker(MOCK_LATENCY_MS="20")
    batch_id = start_batch(client, 300)
    wait_for(lambda: batch(client, batch_id)["counts"].get("sent", 0) >= 20, what="some sends")
    canceled = control(client, batch_id, "cancel")
    assert canceled.status_code == 200
    assert canceled.json["state"] == "canceled" and canceled.json["canceled_now"] > 0
    time.sleep(1)  # sends in flight finish
    settled = sends_in(worker)
    time.sleep(1.5)
    assert sends_in(worker) == settled
    final = batch(client, batch_id)
    assert final["counts"].get("sent", 0) + final["counts"].get("canceled", 0) == 300
    assert final["counts"]["sent"] == settled
    assert final["progress"] == 1.0 and final["finished_at"]
    refused = control(client, batch_id, "resume")
    assert refused.status_code == 409
    assert refused.json["code"] == "illegal_transition"
    listed = client.get(
        f"/v1/batches/{batch_id}/messages", query_string={"status": "canceled", "limit": 500}, headers=auth()
    ).json
    assert len(listed["messages"]) == final["counts"]["canceled"]
    assert listed["next_cursor"] is None


def test_failed_rows_do_not_stop_the_batch(client, start_worker):
    start_worker(MOCK_FAILURE_RATE="0.3", JOB_ATTEMPTS="1", SENDER_AUTO_PAUSE_WINDOW="0")
    batch_id = start_batch(client, 200)
    done = wait_for_state(client, batch_id, "completed")
    assert done["counts"]["sent"] + done["counts"]["failed"] == 200
    assert done["counts"]["failed"] > 0
    failed = client.get(
        f"/v1/batches/{batch_id}/messages", query_string={"status": "failed", "limit": 500}, headers=auth()
    ).json["messages"]
    assert len(failed) == done["counts"]["failed"]
    assert all(m["last_error"]["code"] == "mock_failure" for m in failed)


def test_batches_are_private_to_their_api_key(client):
    batch_id = start_batch(client, 2)
    assert client.get(f"/v1/batches/{batch_id}", headers=auth("test-key-2")).status_code == 404
    assert client.get("/v1/batches/batch-nope", headers=auth()).status_code == 404
    assert client.post("/v1/batches/batch-nope/pause", headers=auth()).status_code == 404


def test_listing_rejects_bad_arguments(client):
    batch_id = start_batch(client, 2)
    for args in ({"status": "lost"}, {"limit": "0"}, {"limit": "501"}, {"cursor": "-1"}):
        answer = client.get(f"/v1/batches/{batch_id}/messages", query_string=args, headers=auth())
        assert answer.status_code == 400, args


def test_a_lost_chunk_task_is_republished(make_app, redis_client, start_worker):
    client = make_app(QUEUED_REPUBLISH_AFTER="1", BULK_CHUNK_SIZE="10")
    batch_id = start_batch(client, 30)
    redis_client.delete("message-dispatch-queue")  # the broker lost every chunk task
    start_worker(QUEUED_REPUBLISH_AFTER="1")
    assert wait_for_state(client, batch_id, "completed")["counts"] == {"sent": 30}
