"""POST /v1/messages/send: the reach-town contract's answers, and a clear 400 for every bad input."""

import json

import pytest

from tests.conftest import API_KEY, OTHER_API_KEY, auth, stored_text

VALID = {"recipient_phone": "+5564999998888", "message_body": "Olá! Teste 🚀", "external_id": "campaign_1_contact_1"}


def send(client, body, headers=None, **kwargs):
    return client.post("/v1/messages/send", json=body, headers=headers if headers is not None else auth(), **kwargs)


def test_health_is_public_and_says_ok(client):
    answer = client.get("/health")
    assert answer.status_code == 200
    assert answer.json["status"] == "ok"
    assert answer.json["timestamp"].endswith("Z")


def test_readiness_checks_redis(client):
    answer = client.get("/health/ready")
    assert answer.status_code == 200
    assert answer.json["status"] == "ok"
    assert answer.json["redis"] == "ok"


def test_send_answers_as_the_seed_contract(client, redis_client):
    answer = send(client, VALID)
    assert answer.status_code == 200
    body = answer.json
    assert body["status"] == "queued"
    assert body["message_id"].startswith("msg-") and len(body["message_id"]) == 40
    assert body["provider_details"]["provider"] == "mock"
    assert body["provider_details"]["queued_at"].endswith("Z")
    assert redis_client.llen("message-dispatch-queue") == 1  # its task was published


def test_every_configured_key_is_accepted(client):
    assert send(client, VALID, auth(API_KEY)).status_code == 200
    assert send(client, {**VALID, "external_id": "other"}, auth(OTHER_API_KEY)).status_code == 200


def test_missing_key(client):
    answer = send(client, VALID, headers={})
    assert answer.status_code == 401
    assert answer.json["error"] == "Missing X-API-Key header"


def test_invalid_key(client):
    answer = send(client, VALID, auth("wrong"))
    assert answer.status_code == 401
    assert answer.json["error"] == "Invalid API Key"


def test_missing_fields_are_listed_in_the_seed_order(client):
    answer = send(client, {})
    assert answer.status_code == 400
    assert answer.json["error"] == "Missing required fields: recipient_phone, message_body, external_id"
    answer = send(client, {"message_body": "x"})
    assert answer.json["error"] == "Missing required fields: recipient_phone, external_id"


def test_null_counts_as_missing(client):
    answer = send(client, {**VALID, "external_id": None})
    assert answer.status_code == 400
    assert answer.json["error"] == "Missing required fields: external_id"


def test_invalid_phone(client):
    answer = send(client, {**VALID, "recipient_phone": "12345"})
    assert answer.status_code == 400
    assert answer.json["error"] == "Invalid phone number format"
    assert answer.json["field"] == "recipient_phone"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**VALID, "message_body": ""}, "message_body"),
        ({**VALID, "message_body": "   \n"}, "message_body"),
        ({**VALID, "external_id": ""}, "external_id"),
        ({**VALID, "recipient_phone": 5564999998888}, "recipient_phone"),
        ({**VALID, "message_body": ["hi"]}, "message_body"),
        ({**VALID, "external_id": {"id": 1}}, "external_id"),
        ({**VALID, "external_id": "x" * 256}, "external_id"),
        ({**VALID, "message_body": "x" * 4097}, "message_body"),
        ({**VALID, "recipient_phone": "5" * 40}, "recipient_phone"),
    ],
)
def test_bad_fields_get_a_400_naming_the_field(client, body, field):
    answer = send(client, body)
    assert answer.status_code == 400
    assert answer.json["field"] == field
    assert field in answer.json["error"]


def test_malformed_json(client):
    answer = client.post("/v1/messages/send", data="{not json", content_type="application/json", headers=auth())
    assert answer.status_code == 400
    assert answer.json["code"] == "malformed_json"


def test_invalid_utf8(client):
    answer = client.post("/v1/messages/send", data=b'{"a": "\xff"}', content_type="application/json", headers=auth())
    assert answer.status_code == 400


def test_a_json_array_is_not_an_object(client):
    answer = client.post("/v1/messages/send", data="[1]", content_type="application/json", headers=auth())
    assert answer.status_code == 400
    assert answer.json["field"] == "body"


def test_non_json_content_type(client):
    answer = client.post("/v1/messages/send", data=json.dumps(VALID), content_type="text/plain", headers=auth())
    assert answer.status_code == 400
    assert answer.json["field"] == "Content-Type"


def test_huge_body_is_refused_with_json(client):
    answer = send(client, {**VALID, "message_body": "x" * 2_000_000})
    assert answer.status_code == 413
    assert answer.json["code"] == "body_too_large"


def test_unknown_fields_are_ignored(client):
    assert send(client, {**VALID, "campaign": "x"}).status_code == 200


def test_unicode_text_is_kept_exactly(client):
    message_id = send(client, VALID).json["message_id"]
    store = client.application.extensions["dispatcher"].store
    assert stored_text(store.redis, message_id) == VALID["message_body"]
    assert store.get(message_id).recipient == "+5564999998888"


def test_national_number_is_stored_as_e164(client):
    message_id = send(client, {**VALID, "recipient_phone": "(64) 99999-8888"}).json["message_id"]
    assert client.application.extensions["dispatcher"].store.get(message_id).recipient == "+5564999998888"


def test_unknown_route_is_json(client):
    answer = client.get("/v2/nothing")
    assert answer.status_code == 404
    assert answer.json["error"] == "Route not found"


def test_wrong_method_is_json(client):
    answer = client.put("/v1/messages/send", headers=auth())
    assert answer.status_code == 405
    assert "error" in answer.json


def test_request_id_is_echoed_or_made(client):
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    assert len(client.get("/health").headers["X-Request-ID"]) == 32


def test_get_message_masks_the_phone_and_hides_the_text(client):
    message_id = send(client, VALID).json["message_id"]
    answer = client.get(f"/v1/messages/{message_id}", headers=auth())
    assert answer.status_code == 200
    message = answer.json
    assert message["status"] == "queued"
    assert message["recipient"] == "+55********888"
    assert message["external_id"] == VALID["external_id"]
    assert message["history"][0]["status"] == "queued"
    assert VALID["message_body"] not in answer.get_data(as_text=True)


def test_find_by_external_id(client):
    message_id = send(client, VALID).json["message_id"]
    answer = client.get("/v1/messages", query_string={"external_id": VALID["external_id"]}, headers=auth())
    assert answer.json["message_id"] == message_id
    missing = client.get("/v1/messages", query_string={"external_id": "nope"}, headers=auth())
    assert missing.status_code == 404
    assert client.get("/v1/messages", headers=auth()).status_code == 400


def test_messages_are_private_to_their_api_key(client):
    message_id = send(client, VALID).json["message_id"]
    assert client.get(f"/v1/messages/{message_id}", headers=auth(OTHER_API_KEY)).status_code == 404
    assert client.get("/v1/messages/msg-unknown", headers=auth()).status_code == 404


def test_openapi_documents_the_send_endpoint(client):
    spec = client.get("/openapi.json").json
    operation = spec["paths"]["/v1/messages/send"]["post"]
    assert "SendMessageSchema" in operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert set(spec["components"]["schemas"]["SendMessageSchema"]["required"]) == {
        "recipient_phone",
        "message_body",
        "external_id",
    }
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/v1/messages/send" in page.get_data(as_text=True)
