"""The legacy API (/api/v1, the Fastify + BullMQ system's routes) answers as its source did, on top of our services;
and /v1/queue/status."""

import time

from tests.conftest import auth, operator, stored_text, wait_for

SINGLE = {"instanceName": "loja-1", "phone": "5511999999999", "type": "text", "message": "Olá!"}


def test_health(client):
    answer = client.get("/api/v1/health").json
    assert answer["status"] == "ok" and answer["timestamp"].endswith("Z")


def test_single_is_queued_as_a_job(client):
    answer = client.post("/api/v1/dispatch/single", json=SINGLE, headers=auth())
    assert answer.status_code == 200
    assert answer.json["success"] is True
    assert answer.json["message"] == "Job único adicionado à fila."
    job = client.get(f"/api/v1/queue/jobs/{answer.json['jobId']}/status", headers=auth()).json
    assert job["id"] == answer.json["jobId"]
    assert job["state"] == "waiting"
    assert job["data"]["phone"] == "+55********999"
    assert job["attemptsMade"] == 0
    assert set(job) == {
        "id",
        "name",
        "data",
        "state",
        "progress",
        "failedReason",
        "returnValue",
        "timestamp",
        "processedOn",
        "finishedOn",
        "attemptsMade",
    }


def test_errors_use_seed_000s_shape(client):
    unknown_field = client.post("/api/v1/dispatch/single", json={**SINGLE, "extra": 1}, headers=auth())
    assert unknown_field.status_code == 400
    assert unknown_field.json["success"] is False and "extra" in unknown_field.json["message"]
    missing = client.post("/api/v1/dispatch/single", json={"type": "text"}, headers=auth())
    assert missing.status_code == 400 and missing.json["success"] is False
    media = client.post("/api/v1/dispatch/single", json={**SINGLE, "type": "media"}, headers=auth())
    assert media.json["message"] == "mediaUrl is required when type is media"
    no_key = client.post("/api/v1/dispatch/single", json=SINGLE)
    assert no_key.status_code == 401 and no_key.json["message"] == "Missing X-API-Key header"
    bad_phone = client.post("/api/v1/dispatch/single", json={**SINGLE, "phone": "123"}, headers=auth())
    assert bad_phone.json == {
        "success": False,
        "message": "Invalid phone number format",
        "code": "invalid_phone",
        "field": "recipient_phone",
    }


def test_unknown_route_under_api_v1(client):
    answer = client.get("/api/v1/nope?x=1")
    assert answer.status_code == 404
    assert answer.json == {"success": False, "message": "Rota não encontrada: GET /api/v1/nope?x=1"}


def test_bulk_fills_variables_with_spaces_in_braces(client):
    body = {
        "instanceName": "loja-1",
        "type": "text",
        "message": "Olá {{ nome }}, {{cidade}}!",
        "recipients": [
            {"phone": "5511999999999", "variables": {"nome": "Ana", "cidade": "Goiânia"}},
            {"phone": "64999998888", "variables": {"nome": "Zé", "cidade": "Rio Verde"}},
        ],
    }
    answer = client.post("/api/v1/dispatch/bulk", json=body, headers=auth())
    assert answer.status_code == 200
    assert answer.json["success"] is True and answer.json["message"] == "2 jobs adicionados à fila."
    store = client.application.extensions["dispatcher"].store
    texts = [stored_text(store.redis, job_id) for job_id in answer.json["jobIds"]]
    assert texts == ["Olá Ana, Goiânia!", "Olá Zé, Rio Verde!"]
    batch_job = client.get(f"/api/v1/queue/jobs/{answer.json['batchId']}/status", headers=auth()).json
    assert batch_job["name"] == "dispatch.batch" and batch_job["data"]["total"] == 2


def test_bulk_names_the_recipient_that_cannot_be_sent(client):
    body = {
        "instanceName": "loja-1",
        "type": "text",
        "message": "Oi",
        "recipients": [{"phone": "5511999999999"}, {"phone": "12"}],
    }
    answer = client.post("/api/v1/dispatch/bulk", json=body, headers=auth())
    assert answer.status_code == 400
    assert answer.json["message"].startswith("recipients[1]:")
    assert client.get("/api/v1/queue/status", headers=operator()).json["counts"]["wait"] == 0  # nothing queued


def test_unknown_job(client):
    answer = client.get("/api/v1/queue/jobs/msg-nope/status", headers=auth())
    assert answer.status_code == 404
    assert answer.json["message"] == "Job não encontrado."


def test_queue_status_counts_in_bullmqs_words(client, start_worker):
    client.post("/api/v1/dispatch/single", json=SINGLE, headers=auth())
    status = client.get("/api/v1/queue/status", headers=operator()).json
    assert status == {
        "name": "message-dispatch-queue",
        "isPaused": False,
        "counts": {"wait": 1, "active": 0, "completed": 0, "failed": 0, "delayed": 0, "paused": 0},
    }
    start_worker()
    wait_for(
        lambda: client.get("/api/v1/queue/status", headers=operator()).json["counts"]["completed"] == 1,
        what="the job to complete",
    )


def test_our_queue_status_lists_workers(client, start_worker):
    began = time.monotonic()
    alone = client.get("/v1/queue/status", headers=operator()).json
    assert time.monotonic() - began < 1.5
    assert alone["workers"] == [] and alone["workers_online"] == 0
    client.post(
        "/v1/messages/send",
        json={"recipient_phone": "+5564999998888", "message_body": "x", "external_id": "q1"},
        headers=auth(),
    )
    assert client.get("/v1/queue/status", headers=operator()).json["tasks_in_broker"] == 1
    start_worker()
    # The worker says it is alive in a heartbeat of its own, which may come just after its first send.
    status = wait_for(
        lambda: (
            (s := client.get("/v1/queue/status", headers=operator()).json)["counts"]["sent"] == 1
            and s["workers_online"] == 1
            and s
        ),
        what="the send, and the worker listed",
    )
    assert status["waiting"] == 0 and status["tasks_in_broker"] == 0
