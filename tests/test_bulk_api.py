"""POST /v1/messages/bulk without a worker: validation per row, templates, idempotency, limits."""

import pytest
from marshmallow import ValidationError

from dispatcher.api.intake import load_row
from dispatcher.api.schemas import BulkRowSchema
from tests.conftest import auth, stored_text


def bulk(client, body, headers=None):
    return client.post("/v1/messages/bulk", json=body, headers=headers if headers is not None else auth())


def row(n, **extra):
    return {"recipient_phone": f"+55649{n:08d}", "external_id": f"campaign_1_contact_{n}", **extra}


def stored_body(client, message_id):
    return stored_text(client.application.extensions["dispatcher"].store.redis, message_id)


def test_rows_are_accepted_with_a_result_each(client, redis_client):
    answer = bulk(client, {"messages": [row(n, message_body=f"Olá {n}") for n in range(3)]})
    assert answer.status_code == 200
    body = answer.json
    assert body["accepted"] == 3 and body["rejected"] == 0
    assert body["batch_id"].startswith("batch-")
    assert [result["index"] for result in body["results"]] == [0, 1, 2]
    assert all(result["message_id"].startswith("msg-") for result in body["results"])
    assert redis_client.llen("message-dispatch-queue") == 1  # one chunk task, not one task per row


def test_large_batches_are_split_into_chunks(make_app, redis_client):
    client = make_app(BULK_CHUNK_SIZE="10")
    bulk(client, {"messages": [row(n, message_body="x") for n in range(25)]})
    assert redis_client.llen("message-dispatch-queue") == 3


def test_template_fills_each_row(client):
    answer = bulk(
        client,
        {
            "template": "Olá {{ name }}! {{city|sua cidade}} 🎉",
            "messages": [
                row(0, variables={"name": "Ana", "city": "Goiânia"}),
                row(1, variables={"name": "Zé"}),
                row(2, variables={"name": "Bia"}, message_body="Texto próprio"),
            ],
        },
    ).json
    texts = [stored_body(client, result["message_id"]) for result in answer["results"]]
    assert texts == ["Olá Ana! Goiânia 🎉", "Olá Zé! sua cidade 🎉", "Texto próprio"]


def test_a_missing_variable_rejects_only_that_row(client):
    answer = bulk(client, {"template": "Olá {{name}}", "messages": [row(0, variables={"name": "Ana"}), row(1)]}).json
    assert answer["accepted"] == 1 and answer["rejected"] == 1
    refused = answer["results"][1]
    assert refused == {
        "index": 1,
        "external_id": "campaign_1_contact_1",
        "error": "Missing template variable: name",
        "code": "missing_variable",
        "field": "variables.name",
    }


def test_templates_run_no_code(client):
    answer = bulk(
        client,
        {
            "template": "{{name}} {{__class__}} {{ 7*7 }}",
            "messages": [row(0, variables={"name": "{{__class__}}", "__class__": "x"})],
        },
    ).json
    assert stored_body(client, answer["results"][0]["message_id"]) == "{{__class__}} x {{ 7*7 }}"


@pytest.mark.parametrize(
    ("bad_row", "field", "error"),
    [
        ({"external_id": "e"}, "recipient_phone", "Missing required fields: recipient_phone"),
        (row(0, recipient_phone="12", message_body="x"), "recipient_phone", "Invalid phone number format"),
        (row(0, external_id=""), "external_id", "external_id must not be empty"),
        (row(0, external_id=5), "external_id", "external_id must be a string"),
        (row(0, message_body=""), "message_body", "message_body must not be empty"),
        (row(0, message_body=None), "message_body", None),
        (row(0, variables=["a"]), "variables", "variables must be an object"),
        (row(0, variables={"a": {"b": 1}}), "variables", None),
        (row(0), "message_body", "Missing required fields: message_body (or a template)"),
        ("not an object", "messages", "Each row must be a JSON object"),
    ],
)
def test_each_bad_row_is_reported_by_field(client, bad_row, field, error):
    answer = bulk(client, {"messages": [row(9, message_body="ok"), bad_row]})
    assert answer.status_code == 200
    result = answer.json["results"][1]
    assert result["field"] == field
    if error:
        assert result["error"] == error
    assert answer.json["accepted"] == 1


def test_duplicate_external_id_inside_one_request(client):
    answer = bulk(client, {"messages": [row(0, message_body="a"), row(0, message_body="a")]}).json
    assert answer["accepted"] == 1
    assert answer["results"][1]["code"] == "duplicate_external_id"
    assert answer["results"][1]["field"] == "external_id"


def test_a_replayed_bulk_creates_nothing_new(client, redis_client):
    body = {"template": "Olá {{name}}", "messages": [row(n, variables={"name": "Ana"}) for n in range(5)]}
    first = bulk(client, body).json
    keys_before = sorted(redis_client.keys("dispatch:*"))
    queued_before = redis_client.llen("message-dispatch-queue")
    again = bulk(client, body).json
    assert again["batch_id"] == first["batch_id"]  # the batch its rows belong to
    assert again["accepted"] == 5
    assert [r["message_id"] for r in again["results"]] == [r["message_id"] for r in first["results"]]
    assert all(r["replayed"] for r in again["results"])
    assert sorted(redis_client.keys("dispatch:*")) == keys_before
    assert redis_client.llen("message-dispatch-queue") == queued_before


def test_a_row_replaying_a_single_send_with_another_text_is_a_conflict(client):
    client.post("/v1/messages/send", json={**row(0), "message_body": "one"}, headers=auth())
    answer = bulk(client, {"messages": [row(0, message_body="two"), row(1, message_body="ok")]}).json
    assert answer["results"][0]["code"] == "idempotency_conflict"
    assert answer["accepted"] == 1


def test_too_many_rows_is_413(make_app):
    client = make_app(BULK_MAX_MESSAGES="3")
    answer = bulk(client, {"messages": [row(n, message_body="x") for n in range(4)]})
    assert answer.status_code == 413
    assert answer.json["code"] == "too_many_rows"
    assert "at most 3" in answer.json["error"]


def test_10001_rows_is_413_with_the_default_limit(client):
    answer = bulk(client, {"messages": [row(n, message_body="x") for n in range(10_001)]})
    assert answer.status_code == 413
    assert answer.json["limit"] == 10_000


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "messages"),
        ({"messages": {}}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [row(0)], "template": 5}, "template"),
        ({"messages": [row(0)], "callback_url": "ftp://x"}, "callback_url"),
        ({"messages": [row(0)], "callback_url": "https://ok.example/cb\r\nX-Injected: 1"}, "callback_url"),
        ({"messages": [row(0)], "sender": ""}, "sender"),
    ],
)
def test_a_malformed_request_is_a_400_naming_the_field(client, body, field):
    answer = bulk(client, body)
    assert answer.status_code == 400
    assert answer.json["field"] == field


def test_bulk_needs_an_api_key(client):
    assert bulk(client, {"messages": [row(0)]}, headers={}).json["error"] == "Missing X-API-Key header"


@pytest.mark.parametrize(
    "raw",
    [
        row(0),
        row(0, message_body="x", variables={"a": 1, "b": None, "c": True, "d": 1.5}),
        row(0, recipient_phone="+" + "5" * 40),
        row(0, external_id="x" * 256),
        row(0, message_body=None),
        row(0, message_body=5),
        row(0, variables={"a": [1]}),
        row(0, variables="x"),
        {"recipient_phone": None, "external_id": "e"},
        {},
    ],
)
def test_the_fast_row_check_agrees_with_the_schema(raw):
    try:
        expected = BulkRowSchema().load(raw)
    except ValidationError as error:
        with pytest.raises(ValidationError) as raised:
            load_row(raw)
        assert raised.value.normalized_messages() == error.normalized_messages()
    else:
        assert load_row(raw) == expected
