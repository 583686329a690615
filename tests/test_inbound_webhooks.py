"""Provider webhooks into the real app and Redis: verified, deduplicated, applied forward only, and passed
on to the caller; forged ones change nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import re

import pytest

from dispatcher import statuses
from tests.celery_events import TaskEvents
from tests.conftest import auth, operator, wait_for
from tests.fakes import inbound
from tests.fakes.receiver import SECRET, FakeReceiver
from tests.test_metrics import sample

PHONE = "+5511999998888"
META_APP_SECRET = "meta-app-secret-for-tests"
TWILIO_TOKEN = "twilio-auth-token-for-tests"
EVOLUTION_SECRET = "evolution-shared-secret"
PUBLIC = "https://dispatcher.example.com"

PROVIDERS_ENV = {
    "WHATSAPP_PROVIDERS": "mock,meta,twilio,evolution",
    "META_ACCESS_TOKEN": "meta-token",
    "META_PHONE_NUMBER_ID": inbound.META_PHONE_NUMBER_ID,
    "META_APP_SECRET": META_APP_SECRET,
    "META_WEBHOOK_VERIFY_TOKEN": "verify-me",
    "TWILIO_ACCOUNT_SID": inbound.TWILIO_ACCOUNT_SID,
    "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
    "TWILIO_WHATSAPP_FROM": inbound.TWILIO_FROM,
    "PUBLIC_BASE_URL": PUBLIC,
    "EVOLUTION_API_URL": "http://127.0.0.1:9",
    "EVOLUTION_API_KEY": "evolution-key",
    "EVOLUTION_INSTANCE": "campanha",
    "EVOLUTION_WEBHOOK_SECRET": EVOLUTION_SECRET,
    "WEBHOOK_SECRET": SECRET,
    "CALLBACK_URL_ALLOWLIST": "127.0.0.1",
    "SESSION_WINDOW": "off",  # free text to contacts that never wrote; tests/test_contacts.py tests the window
}


@pytest.fixture
def client(make_app):
    return make_app(**PROVIDERS_ENV)


def sent_message(client, provider: str, provider_message_id: str, external_id: str = "c1_contact_1", **extra) -> str:
    """A message accepted through the API and recorded `sent` by the store's own claim and advance, as a
    worker records it, with the provider's id."""
    body = {"recipient_phone": PHONE, "message_body": "Olá", "external_id": external_id, "provider": provider, **extra}
    answer = client.post("/v1/messages/send", json=body, headers=auth())
    assert answer.status_code == 200, answer.json
    message_id = answer.json["message_id"]
    store = client.application.extensions["dispatcher"].store
    assert store.claim(message_id, take_over_expired=False).claimed
    ok = store.advance(message_id, statuses.SENT, (statuses.SENDING,), provider_message_id=provider_message_id)
    assert ok == "ok"
    return message_id


def message(client, message_id: str) -> dict:
    return client.get(f"/v1/messages/{message_id}", headers=auth()).json


def post_meta(client, payload: dict, secret: str = META_APP_SECRET):
    headers, raw = inbound.meta_signed(secret, payload)
    return client.post("/v1/webhooks/meta", data=raw, headers=headers)


# ---- Meta ---------------------------------------------------------------------------------------------


def test_meta_statuses_move_forward_only_and_duplicates_are_dropped(client):
    message_id = sent_message(client, "meta", "wamid.A1")
    assert post_meta(client, inbound.meta_status("wamid.A1", "sent", 1_710_930_461)).json["outcomes"] == {"same": 1}
    assert post_meta(client, inbound.meta_status("wamid.A1", "read", 1_710_930_470)).json["outcomes"] == {"ok": 1}
    # Out of order: the delivered report comes after read. It is kept in the history, but ignored.
    late = post_meta(client, inbound.meta_status("wamid.A1", "delivered", 1_710_930_465))
    assert late.json["outcomes"] == {"stale": 1}
    again = post_meta(client, inbound.meta_status("wamid.A1", "read", 1_710_930_470))
    assert again.json["outcomes"] == {"duplicate": 1}

    record = message(client, message_id)
    assert record["status"] == "read"
    webhook_entries = [entry for entry in record["history"] if entry.get("source") == "meta webhook"]
    assert [(e["status"], e.get("ignored")) for e in webhook_entries] == [
        ("read", None),
        ("delivered", "message already read"),
    ]
    assert webhook_entries[0]["provider_at"] == "2024-03-20T10:27:50.000Z"

    scrape = client.get("/metrics", headers=operator()).get_data(as_text=True)
    for outcome, count in (("same", 1), ("ok", 1), ("stale", 1), ("duplicate", 1)):
        assert sample(scrape, "dispatcher_status_reports_total", provider="meta", outcome=outcome) == count


def test_meta_failed_after_sent_keeps_the_error(client):
    message_id = sent_message(client, "meta", "wamid.F1")
    answer = post_meta(client, inbound.meta_status("wamid.F1", "failed", 1_710_930_461, error_code=131026))
    assert answer.status_code == 200
    record = message(client, message_id)
    assert record["status"] == "failed"
    assert record["last_error"]["code"] == "131026"
    assert record["last_error"]["kind"] == "provider"


def test_a_reported_failure_quoting_the_recipient_is_stored_without_it(client):
    message_id = sent_message(client, "meta", "wamid.F2")
    details = f"Message to {inbound.CONTACT_DIGITS} failed; also tried +1 415 555 2671"
    post_meta(client, inbound.meta_status("wamid.F2", "failed", 1_710_930_461, error_code=131026, details=details))
    assert message(client, message_id)["last_error"]["message"] == (
        "Message undeliverable: Message to [recipient] failed; also tried [number]"
    )

    sid = "SM" + "2" * 32
    message_id = sent_message(client, "twilio", sid, external_id="c1_contact_2")
    quoted = f"Unable to deliver to whatsapp:{PHONE}"
    post_twilio(client, inbound.twilio_status(sid, "undelivered", error_code="63024", error_message=quoted))
    assert message(client, message_id)["last_error"]["message"] == "Unable to deliver to [recipient]"


def test_forged_or_unsigned_meta_requests_change_nothing(client):
    message_id = sent_message(client, "meta", "wamid.X1")
    payload = inbound.meta_status("wamid.X1", "read", 1_710_930_470)
    assert post_meta(client, payload, secret="not-the-app-secret").status_code == 403
    raw = json.dumps(payload).encode()
    unsigned = client.post("/v1/webhooks/meta", data=raw, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    assert unsigned.json["code"] == "unauthorized"
    assert message(client, message_id)["status"] == "sent"


def test_meta_signature_is_over_the_raw_bytes(client):
    message_id = sent_message(client, "meta", "wamid.U1")
    payload = inbound.meta_status("wamid.U1", "delivered", 1_710_930_470)
    payload["entry"][0]["changes"][0]["value"]["metadata"]["display_phone_number"] = "Olá, ação 🙂"
    headers, raw = inbound.meta_signed(META_APP_SECRET, payload)
    reserialised = json.dumps(json.loads(raw)).encode()  # ASCII escapes: other bytes, same JSON
    assert client.post("/v1/webhooks/meta", data=reserialised, headers=headers).status_code == 403
    assert message(client, message_id)["status"] == "sent"
    assert client.post("/v1/webhooks/meta", data=raw, headers=headers).status_code == 200
    assert message(client, message_id)["status"] == "delivered"


def test_meta_subscription_handshake(client):
    query = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token="
    answer = client.get(f"/v1/webhooks/meta?{query}verify-me")
    assert answer.status_code == 200
    assert answer.get_data(as_text=True) == "1158201444"
    assert client.get(f"/v1/webhooks/meta?{query}wrong").status_code == 403


def test_a_report_for_a_message_not_sent_yet_is_answered_200_and_kept_a_while(client, redis_client):
    answer = post_meta(client, inbound.meta_status("wamid.NOBODY", "delivered", 1_710_930_470))
    assert answer.status_code == 200
    assert answer.json["outcomes"] == {"parked": 1}
    assert 0 < redis_client.ttl("dispatch:early:meta:wamid.NOBODY") <= 600


def test_reports_that_came_before_sent_are_applied_when_it_is_recorded_in_order(client):
    assert post_meta(client, inbound.meta_status("wamid.E1", "delivered", 1_710_930_461)).json["outcomes"] == {
        "parked": 1
    }
    assert post_meta(client, inbound.meta_status("wamid.E1", "read", 1_710_930_462)).json["outcomes"] == {"parked": 1}
    message_id = sent_message(client, "meta", "wamid.E1")
    record = client.get(f"/v1/messages/{message_id}", headers=auth()).json
    assert record["status"] == statuses.READ
    assert [entry["status"] for entry in record["history"]] == ["queued", "sending", "sent", "delivered", "read"]


def test_a_failure_reported_before_sent_fails_the_message_when_sent_is_recorded(client):
    early = inbound.meta_status("wamid.E2", "failed", 1_710_930_461, error_code=131026)
    assert post_meta(client, early).json["outcomes"] == {"parked": 1}
    assert post_meta(client, early).json["outcomes"] == {"parked": 1}  # Meta retries its webhook
    message_id = sent_message(client, "meta", "wamid.E2")
    record = client.get(f"/v1/messages/{message_id}", headers=auth()).json
    assert record["status"] == statuses.FAILED
    assert record["last_error"]["code"] == "131026"
    assert [entry["status"] for entry in record["history"]] == ["queued", "sending", "sent", "failed"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"{not json", "application/json"), (b'{"object": "whatsapp_business_account"}', "application/json")],
)
def test_malformed_meta_bodies_are_400(client, body, content_type):
    signature = "sha256=" + hmac.new(META_APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": content_type, "X-Hub-Signature-256": signature}
    answer = client.post("/v1/webhooks/meta", data=body, headers=headers)
    assert answer.status_code == 400
    assert answer.json["field"] == "body"


# ---- Twilio -------------------------------------------------------------------------------------------


def post_twilio(client, params: dict[str, str], token: str = TWILIO_TOKEN):
    headers, form = inbound.twilio_signed(token, f"{PUBLIC}/v1/webhooks/twilio", params)
    return client.post("/v1/webhooks/twilio", data=form, headers=headers)


def test_twilio_status_callbacks_are_verified_and_applied(client):
    sid = "SM" + "1" * 32
    message_id = sent_message(client, "twilio", sid)
    answer = post_twilio(client, inbound.twilio_status(sid, "delivered"))
    assert answer.status_code == 200
    assert answer.mimetype == "text/xml"
    assert message(client, message_id)["status"] == "delivered"

    assert post_twilio(client, inbound.twilio_status(sid, "read"), token="forged-token").status_code == 403
    assert message(client, message_id)["status"] == "delivered"

    post_twilio(client, inbound.twilio_status(sid, "undelivered", error_code="63024"))
    record = message(client, message_id)
    assert record["status"] == "failed"
    assert record["last_error"]["code"] == "63024"


def test_twilio_without_a_signature_is_401(client):
    answer = client.post("/v1/webhooks/twilio", data=inbound.twilio_status("SM" + "2" * 32, "delivered"))
    assert answer.status_code == 401


# ---- Evolution ----------------------------------------------------------------------------------------


def test_evolution_statuses_with_the_shared_secret_in_a_header_or_the_url(client):
    message_id = sent_message(client, "evolution", "BAE594145F4C59B4")
    delivered = inbound.evolution_status("campanha", "BAE594145F4C59B4", "DELIVERY_ACK")
    answer = client.post("/v1/webhooks/evolution", json=delivered, headers={"X-Webhook-Secret": EVOLUTION_SECRET})
    assert answer.json["outcomes"] == {"ok": 1}
    read = inbound.evolution_status("campanha", "BAE594145F4C59B4", "READ")
    assert client.post(f"/v1/webhooks/evolution?token={EVOLUTION_SECRET}", json=read).status_code == 200
    assert message(client, message_id)["status"] == "read"


def test_evolution_with_a_wrong_or_missing_secret_changes_nothing(client):
    message_id = sent_message(client, "evolution", "BAE5AAAA")
    read = inbound.evolution_status("campanha", "BAE5AAAA", "READ")
    assert client.post("/v1/webhooks/evolution", json=read, headers={"X-Webhook-Secret": "guess"}).status_code == 403
    assert client.post("/v1/webhooks/evolution", json=read).status_code == 401
    assert message(client, message_id)["status"] == "sent"


def test_an_unconfigured_provider_refuses_its_webhooks(make_app):
    client = make_app()
    read = inbound.evolution_status("campanha", "BAE5AAAA", "READ")
    answer = client.post("/v1/webhooks/evolution", json=read, headers={"X-Webhook-Secret": "anything"})
    assert answer.status_code == 403
    assert "EVOLUTION_WEBHOOK_SECRET" in answer.json["error"]


# ---- both ways: reports in, callbacks out -------------------------------------------------------------


def test_reports_and_replies_reach_the_caller_in_order(make_app, start_callbacks_worker):
    receiver = FakeReceiver().start()
    try:
        env = {**PROVIDERS_ENV, "CALLBACK_BACKOFF_BASE": "0.1", "CALLBACK_BACKOFF_MAX": "0.3"}
        client = make_app(**env)
        start_callbacks_worker(**env)
        message_id = sent_message(client, "meta", "wamid.R1", callback_url=receiver.hook_url)
        receiver.down = True  # the first attempts fail; order must survive the retries
        post_meta(client, inbound.meta_status("wamid.R1", "delivered", 1_710_930_465))
        post_meta(client, inbound.meta_status("wamid.R1", "read", 1_710_930_470))
        post_meta(client, inbound.meta_reply("wamid.IN1", "5511999998888", "Quero sim!", in_reply_to="wamid.R1"))
        wait_for(lambda: len(receiver.received) >= 3, 20, what="attempts while the receiver is down")
        receiver.down = False
        wait_for(lambda: len(receiver.events()) == 4, 20, what="three statuses and one reply")
        assert receiver.statuses_of(message_id) == ["sent", "delivered", "read"]
        (reply,) = receiver.events("message.received")
        assert reply["from"] == "+5511999998888"
        assert reply["text"] == "Quero sim!"
        assert reply["in_reply_to"]["message_id"] == message_id
        assert reply["in_reply_to"]["external_id"] == "c1_contact_1"
        assert reply["to"] == inbound.META_PHONE_NUMBER_ID
        # The same reply delivered again by Meta is not passed on twice: once the last delivery is
        # settled (the receiver answers before the worker records it), nothing new is queued.
        outbox = client.application.extensions["dispatcher"].outbox
        wait_for(lambda: outbox.waiting() == 0, 10, what="the last delivery settled")
        post_meta(client, inbound.meta_reply("wamid.IN1", "5511999998888", "Quero sim!", in_reply_to="wamid.R1"))
        assert outbox.waiting() == 0
    finally:
        receiver.stop()


def test_a_reply_task_names_its_chain_without_the_number(make_app, start_callbacks_worker, redis_url):
    receiver = FakeReceiver().start()
    try:
        env = {**PROVIDERS_ENV, "STATUS_WEBHOOK_URL": receiver.hook_url}
        client = make_app(**env)
        start_callbacks_worker(**env)
        with TaskEvents(redis_url) as events:
            # Listening once the worker's heartbeat is heard (the receiver's wake-up asks for one).
            wait_for(lambda: events.of("worker-heartbeat"), 15, what="the callbacks worker's heartbeat")
            post_meta(client, inbound.meta_reply("wamid.IN7", inbound.CONTACT_DIGITS, "Quero sim!"))
            post_meta(client, inbound.meta_reply("wamid.IN8", inbound.CONTACT_DIGITS, "E mais uma"))
            wait_for(lambda: len(receiver.events("message.received")) == 2, 20, what="both replies")
            tasks = wait_for(
                lambda: events.of("task-received", name="dispatch.deliver_callbacks"), 10, what="the task's event"
            )
        assert [e["text"] for e in receiver.events("message.received")] == ["Quero sim!", "E mais uma"]
        chains = {e["args"] for e in tasks}
        assert len(chains) == 1  # one contact, one chain: its replies stay in order
        (chain,) = chains
        assert re.fullmatch(r"\['in:meta:[0-9a-f]{32}'\]", chain), chain
        digits = inbound.CONTACT_DIGITS
        assert not any(digits[i : i + 5] in chain for i in range(len(digits) - 4)), chain
    finally:
        receiver.stop()


def test_a_reply_chain_named_the_old_way_still_delivers(make_app, start_callbacks_worker):
    receiver = FakeReceiver().start()
    try:
        client = make_app(**PROVIDERS_ENV)
        outbox = client.application.extensions["dispatcher"].outbox
        event = {
            "event_id": "received.meta.wamid.OLD",
            "type": "message.received",
            "provider": "meta",
            "provider_message_id": "wamid.OLD",
            "from": PHONE,
            "to": "our-number",
            "profile_name": None,
            "text": "de antes",
            "media": None,
            "in_reply_to": None,
            "at": "2026-11-25T12:00:03.512Z",
        }  # as published (dispatcher/callback_events.py): the receiver checks
        no_contact = json.dumps({"phone": ""})  # what receive.lua is told of a reply whose number is hidden
        assert outbox.receive(event, f"in:meta:{PHONE}", receiver.hook_url, "", 60, no_contact) == ("queued", "", [])
        start_callbacks_worker(**PROVIDERS_ENV)
        wait_for(lambda: receiver.events("message.received"), 20, what="the reply queued the old way")
        assert receiver.events()[0]["text"] == "de antes"
    finally:
        receiver.stop()
