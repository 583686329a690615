"""Messages through the real app, a real Redis and real Celery worker processes."""

from datetime import datetime

from tests.conftest import auth, wait_for

QUEUE = "message-dispatch-queue"
PHONE = "+5564999998888"
TEXT = "Segredo da campanha 42"


def send(client, external_id="campaign_1_contact_1", text=TEXT):
    answer = client.post(
        "/v1/messages/send",
        json={"recipient_phone": PHONE, "message_body": text, "external_id": external_id},
        headers=auth(),
    )
    assert answer.status_code == 200, answer.json
    return answer.json["message_id"]


def message(client, message_id):
    return client.get(f"/v1/messages/{message_id}", headers=auth()).json


def wait_for_status(client, message_id, status, timeout=20):
    return wait_for(
        lambda: (m := message(client, message_id))["status"] == status and m,
        timeout,
        what=f"{message_id} to be {status} (last: {message(client, message_id)['status']})",
    )


def mock_sends(worker, message_id):
    return [line for line in worker.lines if "[MOCK]" in line and message_id in line]


def test_a_message_is_sent_by_the_worker(client, start_worker):
    worker = start_worker()
    message_id = send(client)
    sent = wait_for_status(client, message_id, "sent")
    assert sent["provider_message_id"].startswith("mock-")
    assert sent["attempts"] == 1
    assert [entry["status"] for entry in sent["history"]] == ["queued", "sending", "sent"]
    assert len(mock_sends(worker, message_id)) == 1


def test_logs_mask_the_phone_and_leave_the_text_out(client, start_worker):
    worker = start_worker()
    message_id = send(client)
    wait_for_status(client, message_id, "sent")
    wait_for(lambda: mock_sends(worker, message_id), what="the worker's [MOCK] line")
    assert "+55********888" in worker.output
    assert PHONE not in worker.output
    assert TEXT not in worker.output


def test_a_task_delivered_twice_sends_once(client, redis_client, start_worker):
    message_id = send(client)
    redis_client.lpush(QUEUE, redis_client.lindex(QUEUE, 0))  # the broker delivers the same task again
    worker = start_worker()
    wait_for_status(client, message_id, "sent")
    wait_for(
        lambda: "task skipped: message is sent" in worker.output or "message is busy" in worker.output,
        what="the duplicate task to run",
    )
    assert len(mock_sends(worker, message_id)) == 1
    assert [entry["status"] for entry in message(client, message_id)["history"]] == ["queued", "sending", "sent"]


def test_transient_errors_are_retried_then_the_message_fails(client, start_worker):
    start_worker(MOCK_FAILURE_RATE="1", JOB_ATTEMPTS="3", JOB_BACKOFF_DELAY="50")
    message_id = send(client)
    failed = wait_for_status(client, message_id, "failed")
    assert failed["attempts"] == 3
    assert [entry["status"] for entry in failed["history"]].count("retrying") == 2
    assert failed["last_error"]["kind"] == "transient"
    assert failed["last_error"]["code"] == "mock_failure"


def test_a_lost_task_is_republished_by_the_reconciler(make_app, redis_client, start_worker):
    client = make_app(QUEUED_REPUBLISH_AFTER="1")
    message_id = send(client)
    redis_client.delete(QUEUE)  # the broker lost the task (Celery #3501, kombu #1405)
    start_worker(QUEUED_REPUBLISH_AFTER="1")
    wait_for_status(client, message_id, "sent")


def test_kill_9_during_a_send_loses_nothing(client, start_worker):
    first = start_worker(MOCK_LATENCY_MS="30000", SEND_LEASE_SECONDS="2")
    message_id = send(client)
    wait_for_status(client, message_id, "sending")
    first.kill9()
    second = start_worker(SEND_LEASE_SECONDS="2")
    sent = wait_for_status(client, message_id, "sent")
    assert sent["attempts"] == 2  # the first attempt died with its worker: the documented ambiguous window
    assert len(mock_sends(second, message_id)) == 1


def test_kill_9_with_lease_expired_action_fail_never_resends(client, start_worker):
    first = start_worker(MOCK_LATENCY_MS="30000", SEND_LEASE_SECONDS="2", LEASE_EXPIRED_ACTION="fail")
    message_id = send(client)
    wait_for_status(client, message_id, "sending")
    first.kill9()
    second = start_worker(SEND_LEASE_SECONDS="2", LEASE_EXPIRED_ACTION="fail")
    failed = wait_for_status(client, message_id, "failed")
    assert failed["last_error"]["code"] == "lease_expired"
    assert not mock_sends(second, message_id)


def test_worker_rate_limit_caps_each_worker(client, start_worker):
    start_worker(WORKER_RATE_LIMIT="2/s")
    message_ids = [send(client, external_id=f"limited-{n}") for n in range(5)]
    for message_id in message_ids:
        wait_for_status(client, message_id, "sent")
    starts = sorted(
        entry["at"]
        for message_id in message_ids
        for entry in message(client, message_id)["history"]
        if entry["status"] == "sending"
    )
    first, last = (datetime.fromisoformat(stamp.replace("Z", "+00:00")) for stamp in (starts[0], starts[-1]))
    assert (last - first).total_seconds() >= 1.5  # 5 sends at 2/s span at least 2 s; unlimited, a few ms
