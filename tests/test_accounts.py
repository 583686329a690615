"""Accounts and roles, through the real app on a real Redis: two accounts (one with two keys) and an operator.

Everything one account owns is invisible and untouchable to the other; a rotated key keeps idempotency;
account keys get 403 on operator routes and the operator's key 403 on an account's routes.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from dispatcher import statuses
from dispatcher.accounts import key_id
from dispatcher.store import MessageStore
from dispatcher.times import iso
from tests.conftest import ADMIN_API_KEY, auth, operator, wait_for
from tests.fakes.receiver import SECRET, FakeReceiver

REACH_OLD, REACH_NEW, OTHER = "reach-old-key", "reach-new-key", "other-account-key"
ACCOUNTS = {"API_KEY": f"reach:{REACH_OLD}, reach:{REACH_NEW}, other:{OTHER}"}
PHONE = "+5564999998888"


def send(client, key: str, external_id: str, **extra):
    body = {"recipient_phone": PHONE, "message_body": "Olá", "external_id": external_id, **extra}
    return client.post("/v1/messages/send", json=body, headers=auth(key))


@pytest.fixture
def client(make_app):
    return make_app(**ACCOUNTS)


def test_every_key_of_an_account_sees_one_message_and_a_replay_under_another_key_sends_nothing(client):
    first = send(client, REACH_OLD, "c1_contact_1").json
    again = send(client, REACH_NEW, "c1_contact_1").json
    assert again["message_id"] == first["message_id"]
    assert again["replayed"] is True
    assert client.get(f"/v1/messages/{first['message_id']}", headers=auth(REACH_NEW)).status_code == 200
    found = client.get("/v1/messages", query_string={"external_id": "c1_contact_1"}, headers=auth(REACH_NEW))
    assert found.json["message_id"] == first["message_id"]
    # The other account's same external_id is its own message.
    theirs = send(client, OTHER, "c1_contact_1").json
    assert theirs["message_id"] != first["message_id"] and theirs["replayed"] is False


def test_one_account_can_neither_read_nor_touch_another_accounts_messages_and_batches(client):
    message_id = send(client, REACH_OLD, "c2_contact_1", send_at=iso(time.time() + 3600)).json["message_id"]
    rows = [{"recipient_phone": PHONE, "external_id": f"c2_bulk_{n}", "message_body": "x"} for n in range(3)]
    batch_id = client.post("/v1/messages/bulk", json={"messages": rows}, headers=auth(REACH_NEW)).json["batch_id"]
    other = auth(OTHER)
    for method, path in [
        ("GET", f"/v1/messages/{message_id}"),
        ("POST", f"/v1/messages/{message_id}/retry"),
        ("POST", f"/v1/messages/{message_id}/cancel"),
        ("GET", f"/v1/batches/{batch_id}"),
        ("GET", f"/v1/batches/{batch_id}/messages"),
        ("POST", f"/v1/batches/{batch_id}/pause"),
        ("POST", f"/v1/batches/{batch_id}/resume"),
        ("POST", f"/v1/batches/{batch_id}/cancel"),
        ("POST", f"/v1/batches/{batch_id}/retry-failed"),
        ("GET", f"/api/v1/queue/jobs/{message_id}/status"),
        ("GET", f"/api/v1/queue/jobs/{batch_id}/status"),
    ]:
        answer = client.open(path, method=method, headers=other)
        assert answer.status_code == 404, (method, path, answer.json)
    assert client.get("/v1/messages", query_string={"external_id": "c2_bulk_0"}, headers=other).status_code == 404
    # ... and its own keys still can.
    assert client.get(f"/v1/batches/{batch_id}", headers=auth(REACH_OLD)).status_code == 200
    assert client.post(f"/v1/messages/{message_id}/cancel", headers=auth(REACH_NEW)).status_code == 200


def test_failed_lists_show_an_account_only_its_own(client):
    store = client.application.extensions["dispatcher"].store
    mine = send(client, REACH_OLD, "c3_contact_1").json["message_id"]
    theirs = send(client, OTHER, "c3_contact_2").json["message_id"]
    for message_id in (mine, theirs):  # failed through the store's own scripts, as a worker does
        assert store.claim(message_id, take_over_expired=False).claimed
        error = json.dumps({"kind": "permanent", "code": "131026", "message": "undeliverable"})
        assert store.advance(message_id, statuses.FAILED, (statuses.SENDING,), last_error=error) == "ok"

    def failed_ids(key):
        return [m["message_id"] for m in client.get("/v1/messages?status=failed", headers=auth(key)).json["messages"]]

    assert failed_ids(REACH_NEW) == [mine]
    assert failed_ids(OTHER) == [theirs]


OPERATOR_ROUTES = [
    ("PUT", "/v1/senders/mock/loja-1", {"rate_per_second": 1}),
    ("POST", "/v1/senders/mock/loja-1/pause", None),
    ("POST", "/v1/senders/mock/loja-1/resume", None),
    ("GET", "/v1/instances", None),
    ("POST", "/v1/instances", {"instance_name": "loja-2"}),
    ("GET", "/v1/instances/loja-1/connect", None),
    ("GET", "/v1/instances/loja-1/status", None),
    ("DELETE", "/v1/instances/loja-1/logout", None),
    ("DELETE", "/v1/instances/loja-1", None),
    ("GET", "/api/v1/instances/", None),
    ("POST", "/api/v1/instances/", {"instanceName": "loja-2"}),
    ("GET", "/api/v1/instances/loja-1/connect", None),
    ("DELETE", "/api/v1/instances/loja-1/logout", None),
    ("GET", "/v1/queue/status", None),
    ("GET", "/api/v1/queue/status", None),
    ("GET", "/metrics", None),
]


@pytest.mark.parametrize(("method", "path", "body"), OPERATOR_ROUTES)
def test_account_keys_get_403_on_operator_routes(client, redis_client, method, path, body):
    before = redis_client.dbsize()
    answer = client.open(path, method=method, json=body, headers=auth(REACH_OLD))
    assert answer.status_code == 403, answer.get_data()[:300]
    assert answer.json["code"] == "operator_only"
    assert redis_client.dbsize() == before


def test_the_operator_changes_senders_and_reads_the_whole_queue(client):
    assert client.put("/v1/senders/mock/loja-1", json={"rate_per_second": 2}, headers=operator()).status_code == 200
    assert client.post("/v1/senders/mock/loja-1/pause", headers=operator()).json["state"] == "paused"
    assert client.get("/v1/queue/status", headers=operator()).status_code == 200
    assert client.get("/metrics", headers=operator()).status_code == 200
    # Accounts keep reading the senders' pace.
    assert client.get("/v1/senders/mock/loja-1", headers=auth(OTHER)).json["rate_per_second"] == 2


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/messages/send"), ("GET", "/v1/messages/msg-x"), ("POST", "/v1/messages/bulk"),
     ("POST", "/api/v1/dispatch/single")],
)  # fmt: skip
def test_the_operators_key_acts_for_no_account(client, method, path):
    answer = client.open(path, method=method, json={}, headers=operator())
    assert answer.status_code == 403
    assert answer.json["code"] == "account_only"


def test_in_development_without_an_operator_key_api_keys_act_as_operator(make_app):
    dev = make_app(**ACCOUNTS, APP_ENV="development", ADMIN_API_KEY="")
    assert dev.put("/v1/senders/mock/a", json={"rate_per_second": 1}, headers=auth(OTHER)).status_code == 200
    with_operator = make_app(**ACCOUNTS, APP_ENV="development")
    assert with_operator.put("/v1/senders/mock/a", json={}, headers=auth(OTHER)).json["code"] == "operator_only"
    long_key = "other-account-production-key"
    production = make_app(API_KEY=f"other:{long_key}", APP_ENV="production", ADMIN_API_KEY="")
    assert production.put("/v1/senders/mock/a", json={}, headers=auth(long_key)).json["code"] == "operator_only"
    assert production.put("/v1/senders/mock/a", json={}, headers=auth(ADMIN_API_KEY)).status_code == 401


def test_a_plain_key_keeps_what_it_stored_before_accounts_and_can_join_a_named_account(make_app, redis_client):
    """Records written before accounts name their owner `key_id`: the plain key, and a key put in the account
    named by that id, still reach them."""
    plain = "plain-key-of-2025"
    message_id = f"msg-{uuid.uuid4()}"
    redis_client.hset(
        MessageStore.message_key(message_id),
        mapping={
            "message_id": message_id,
            "key_id": key_id(plain),
            "external_id": "old_1",
            "recipient": PHONE,
            "body": "x",
            "fingerprint": "f",
            "status": "sent",
            "attempts": 1,
            "provider": "mock",
            "created_at": "2026-11-01T00:00:00.000Z",
            "updated_at": "2026-11-01T00:00:00.000Z",
        },
    )
    redis_client.set(MessageStore.external_key(key_id(plain), "old_1"), message_id)
    client = make_app(API_KEY=f"{plain}, {key_id(plain)}:rotated-key")
    for key in (plain, "rotated-key"):
        assert client.get(f"/v1/messages/{message_id}", headers=auth(key)).status_code == 200
        found = client.get("/v1/messages", query_string={"external_id": "old_1"}, headers=auth(key))
        assert found.json["message_id"] == message_id


def test_dead_deliveries_are_the_accounts_own_and_events_are_signed_with_its_secret(
    make_app, start_worker, start_callbacks_worker
):
    other_secret = "the-other-accounts-own-secret"
    reach_receiver, other_receiver = FakeReceiver().start(), FakeReceiver(other_secret).start()
    try:
        env = {
            **ACCOUNTS,
            "WEBHOOK_SECRET": SECRET,
            "CALLBACK_SECRETS": f"other:{other_secret}",
            "CALLBACK_URL_ALLOWLIST": "127.0.0.1",
            "CALLBACK_BACKOFF_BASE": "0.1",
            "CALLBACK_BACKOFF_MAX": "0.3",
            "CALLBACK_RETRY_FOR": "1",
        }
        client = make_app(**env)
        start_worker(**env)
        start_callbacks_worker(**env)
        reach_receiver.down = other_receiver.down = True
        mine = send(client, REACH_OLD, "c4_contact_1", callback_url=reach_receiver.hook_url).json["message_id"]
        theirs = send(client, OTHER, "c4_contact_2", callback_url=other_receiver.hook_url).json["message_id"]

        def dead(key):
            page = client.get("/v1/webhooks/deliveries?state=dead", headers=auth(key)).json
            return sorted(delivery["event"]["message_id"] for delivery in page["deliveries"])

        wait_for(lambda: len(dead(ADMIN_API_KEY)) == 2, 30, what="both deliveries to die")
        assert dead(REACH_NEW) == [mine]
        assert dead(OTHER) == [theirs]
        assert dead(ADMIN_API_KEY) == sorted([mine, theirs])
        assert client.post(f"/v1/webhooks/deliveries/{mine}.1/retry", headers=auth(OTHER)).status_code == 404
        reach_receiver.down = other_receiver.down = False
        assert client.post(f"/v1/webhooks/deliveries/{mine}.1/retry", headers=auth(REACH_NEW)).status_code == 202
        assert client.post(f"/v1/webhooks/deliveries/{theirs}.1/retry", headers=operator()).status_code == 202
        # Each receiver accepts only events signed with its account's secret: both arrive.
        wait_for(lambda: reach_receiver.events() and other_receiver.events(), 20, what="both re-sent events")
        assert reach_receiver.events()[0]["message_id"] == mine
        assert other_receiver.events()[0]["message_id"] == theirs
        assert dead(ADMIN_API_KEY) == []
    finally:
        reach_receiver.stop()
        other_receiver.stop()
