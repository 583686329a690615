"""The Procfile's `web` line (the real granian web server) with a real worker, over real HTTP."""

from concurrent.futures import ThreadPoolExecutor

import requests

from tests.conftest import API_KEY, wait_for

BODY = {"recipient_phone": "+5564999998888", "message_body": "Olá!", "external_id": "campaign_7_contact_1"}


def test_reach_town_call_is_queued_and_sent(start_web, start_worker):
    base = start_web()
    start_worker()
    answer = requests.post(f"{base}/v1/messages/send", json=BODY, headers={"X-API-Key": API_KEY}, timeout=5)
    assert answer.status_code == 200
    message_id = answer.json()["message_id"]

    def status():
        return requests.get(f"{base}/v1/messages/{message_id}", headers={"X-API-Key": API_KEY}, timeout=5).json()

    wait_for(lambda: status()["status"] == "sent", what="the message to be sent")


def test_concurrent_requests_with_one_external_id_create_one_message(start_web, redis_client):
    base = start_web()

    def post(_):
        return requests.post(f"{base}/v1/messages/send", json=BODY, headers={"X-API-Key": API_KEY}, timeout=5)

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(post, range(24)))
    assert {answer.status_code for answer in answers} == {200}
    assert len({answer.json()["message_id"] for answer in answers}) == 1
    assert redis_client.llen("message-dispatch-queue") == 1


def test_errors_over_http_are_json(start_web):
    base = start_web()
    missing = requests.post(f"{base}/v1/messages/send", json={}, headers={"X-API-Key": API_KEY}, timeout=5)
    assert missing.status_code == 400
    assert missing.json()["error"] == "Missing required fields: recipient_phone, message_body, external_id"
    assert requests.post(f"{base}/v1/messages/send", json=BODY, timeout=5).json() == {
        "error": "Missing X-API-Key header",
        "code": "missing_api_key",
    }
