"""The single and bulk bodies' provider, sender, media and template fields: whatever the chosen provider
cannot send is a 400 naming the field at the API, never a failure inside a worker."""

import json

import pytest

from dispatcher import redis_keys
from tests.conftest import auth, wait_for
from tests.fakes import evolution

EVOLUTION = {
    "WHATSAPP_PROVIDER": "evolution",
    "WHATSAPP_PROVIDERS": "evolution,mock",
    "EVOLUTION_API_URL": "http://127.0.0.1:9",
    "EVOLUTION_API_KEY": "k",
    "EVOLUTION_INSTANCE": "loja-1,loja-2",
}
BASE = {"recipient_phone": "+5564999998888", "message_body": "Olá", "external_id": "route-1"}
MEDIA = {"url": "https://example.com/files/menu.pdf", "type": "document", "filename": "menu.pdf"}


@pytest.fixture
def evolution_client(make_app):
    return make_app(**EVOLUTION)


def send(client, **fields):
    return client.post("/v1/messages/send", json={**BASE, **fields}, headers=auth())


def stored(client, message_id):
    """The message's record with its content (body, media, template)."""
    redis_client = client.application.extensions["dispatcher"].store.redis
    content = redis_client.get(redis_keys.CONTENT.key(message_id))
    return {**redis_client.hgetall(redis_keys.MESSAGE.key(message_id)), **(json.loads(content) if content else {})}


def test_the_default_provider_and_its_first_sender(evolution_client):
    answer = send(evolution_client)
    assert answer.json["provider_details"]["provider"] == "evolution"
    record = stored(evolution_client, answer.json["message_id"])
    assert record["provider"] == "evolution" and record["sender"] == "loja-1"


def test_a_request_may_choose_another_enabled_provider_and_sender(evolution_client):
    assert send(evolution_client, provider="mock").json["provider_details"]["provider"] == "mock"
    answer = send(evolution_client, external_id="route-2", sender="loja-2")
    assert stored(evolution_client, answer.json["message_id"])["sender"] == "loja-2"


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"provider": "twilio"}, "provider", "unknown_provider"),
        ({"sender": "loja-9"}, "sender", "unknown_sender"),
        ({"template": {"name": "hello", "language": "pt_BR"}}, "template", "unsupported_kind"),
        ({"media": {"url": "ftp://x/y.pdf", "type": "document"}}, "media", "invalid_field"),
        ({"media": {"url": "https://x/y.pdf", "type": "sticker"}}, "media", "invalid_field"),
        ({"media": {"type": "image"}}, "media", None),
    ],
)
def test_what_the_provider_cannot_send_is_a_400_naming_the_field(evolution_client, fields, field, code):
    answer = send(evolution_client, **fields)
    assert answer.status_code == 400, answer.json
    assert answer.json["field"] == field
    if code:
        assert answer.json["code"] == code


def test_media_needs_no_text_and_is_part_of_the_idempotency_check(evolution_client):
    body = {key: value for key, value in BASE.items() if key != "message_body"}
    first = evolution_client.post("/v1/messages/send", json={**body, "media": MEDIA}, headers=auth())
    assert first.status_code == 200, first.json
    other_file = {**MEDIA, "url": "https://example.com/files/other.pdf"}
    conflict = evolution_client.post("/v1/messages/send", json={**body, "media": other_file}, headers=auth())
    assert conflict.status_code == 409


def test_bulk_rows_share_the_requests_media_and_sender(evolution_client):
    answer = evolution_client.post(
        "/v1/messages/bulk",
        headers=auth(),
        json={
            "media": MEDIA,
            "sender": "loja-2",
            "template": "Cardápio de {{name}}",
            "messages": [{"recipient_phone": "+5564999998888", "external_id": "b-1", "variables": {"name": "Ana"}}],
        },
    )
    assert answer.json["accepted"] == 1
    record = stored(evolution_client, answer.json["results"][0]["message_id"])
    assert record["sender"] == "loja-2" and "menu.pdf" in record["media"] and record["body"] == "Cardápio de Ana"
    unknown = evolution_client.post(
        "/v1/messages/bulk",
        headers=auth(),
        json={
            "provider": "meta",
            "messages": [{"recipient_phone": "+5564999998888", "external_id": "b-2", "message_body": "x"}],
        },
    )
    assert unknown.status_code == 400 and unknown.json["field"] == "provider"


def test_seed_000_instance_name_must_be_a_configured_instance(evolution_client):
    answer = evolution_client.post(
        "/api/v1/dispatch/single",
        headers=auth(),
        json={"instanceName": "loja-9", "phone": "5564999998888", "type": "text", "message": "Oi"},
    )
    assert answer.status_code == 400 and answer.json["success"] is False and answer.json["field"] == "instanceName"


def test_a_document_reaches_evolution_as_send_media(make_app, start_worker):
    fake = evolution.FakeEvolution().start()
    try:
        env = evolution.CASE.env(fake)
        client = make_app(**env)
        start_worker(**env)
        answer = send(client, media=MEDIA, message_body="Nosso cardápio")
        message_id = answer.json["message_id"]
        wait_for(
            lambda: client.get(f"/v1/messages/{message_id}", headers=auth()).json["status"] == "sent",
            what="the media message",
        )
        request = fake.received[0]
        assert request.path == f"/message/sendMedia/{evolution.INSTANCE}"
        assert request.json["mediatype"] == "document" and request.json["fileName"] == "menu.pdf"
        assert request.json["caption"] == "Nosso cardápio" and request.json["mimetype"] == "application/pdf"
        assert request.json["number"] == "5564999998888"
        assert fake.spec_errors == []
    finally:
        fake.stop()
