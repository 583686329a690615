"""How a message is laid out in Redis, against a real Redis: what a sent message keeps (memory is what a
deployment pays for first: docs/performance.md), and that messages written by the layout before it still replay
and send."""

import json
import uuid

import pytest

from dispatcher import redis_keys, statuses
from dispatcher.failed_messages import FailedMessages
from dispatcher.messages import MessageService, Route, new_message
from dispatcher.names import message_id_for
from dispatcher.store import MessageStore, connect
from tasks.delivery import Outcome, record

PHONE = "+5564999998888"
TEMPLATE = {"name": "consulta", "language": "pt_BR", "components": [{"type": "body", "parameters": [1234567890123456]}]}


@pytest.fixture
def store(redis_url, redis_client):
    return MessageStore(connect(redis_url), retention_seconds=3600, queued_grace_seconds=300, lease_seconds=5)


@pytest.fixture
def service(store):
    return MessageService(
        store,
        lambda message_id: ("test-queue", f"task:{message_id}"),
        lambda batch_id, start, stop: ("test-queue", f"chunk:{batch_id}:{start}:{stop}"),
        chunk_size=10,
    )


def finish(store, message_id: str, outcome: Outcome) -> None:
    claim = store.claim(message_id, take_over_expired=True)
    assert claim.claimed
    assert record(store, message_id, outcome, claim.attempt) == "ok"


def test_a_messages_id_follows_from_its_account_and_external_id(service):
    accepted = service.accept("k", PHONE, "Olá", "c1", Route("mock"))
    assert accepted.message_id == message_id_for("k", "c1") != message_id_for("other", "c1")
    assert uuid.UUID(accepted.message_id.removeprefix("msg-")).version == 8


def test_a_sent_message_keeps_a_compact_record_and_no_text(service, store, redis_client):
    message_id = service.accept("k", PHONE, "Olá " + "x" * 200, "c1", Route("mock")).message_id
    assert json.loads(redis_client.get(redis_keys.CONTENT.key(message_id)))["body"].startswith("Olá x")
    finish(store, message_id, Outcome(statuses.SENT, provider_message_id="wamid.1"))
    key = redis_keys.MESSAGE.key(message_id)
    assert redis_client.object("encoding", key) in ("ziplist", "listpack")  # every value short
    assert not redis_client.exists(redis_keys.CONTENT.key(message_id))  # nothing will read the text again
    assert not redis_client.keys("dispatch:ext:*")  # the record is what a replay finds
    message = store.get(message_id)
    assert message.status == statuses.SENT
    assert [entry["status"] for entry in message.history] == ["queued", "sending", "sent"]
    assert message.history[-1]["provider_message_id"] == "wamid.1"  # from the record, which holds it once


def test_a_failed_message_keeps_its_content_for_an_operators_retry(service, store, redis_client):
    route = Route("mock", template=TEMPLATE)
    message_id = service.accept("k", PHONE, "Olá", "c1", route).message_id
    failure = json.dumps({"kind": "permanent", "code": "400", "message": "no"})
    finish(store, message_id, Outcome(statuses.FAILED, error=failure))
    content = redis_keys.CONTENT.key(message_id)
    assert 0 < redis_client.ttl(content) <= redis_client.ttl(redis_keys.MESSAGE.key(message_id))
    assert FailedMessages(store).retry(message_id, lambda i: ("test-queue", f"task:{i}"), 300) == "ok"
    assert redis_client.ttl(content) == -1  # waiting again: kept until it finishes
    claim = store.claim(message_id, take_over_expired=True)
    assert (claim.body, json.loads(claim.template)) == ("Olá", TEMPLATE)  # the number not re-encoded


def test_a_replay_finds_a_message_accepted_with_an_external_id_key(service, store, redis_client):
    """Messages accepted before ids followed from external_ids are named by an external_id key and carry their
    text in their record: a replay still answers them, and a worker still sends them."""
    legacy_id = f"msg-{uuid.uuid4()}"
    new = service.accept("k", PHONE, "Olá", "c1", Route("mock"))  # only to write a record as today's code does
    fields = redis_client.hgetall(redis_keys.MESSAGE.key(new.message_id))
    redis_client.delete(redis_keys.MESSAGE.key(new.message_id), redis_keys.CONTENT.key(new.message_id))
    redis_client.hset(redis_keys.MESSAGE.key(legacy_id), mapping={**fields, "message_id": legacy_id, "body": "Olá"})
    redis_client.set(redis_keys.EXTERNAL_ID.key("k", "c1"), legacy_id)
    redis_client.set(redis_keys.EXTERNAL_ID.key("k", "row-1"), legacy_id)

    again = service.accept("k", PHONE, "Olá", "c1", Route("mock"))
    assert (again.message_id, again.replayed) == (legacy_id, True)
    assert store.find_by_external_id("k", "c1").message_id == legacy_id
    _, rows = service.accept_batch("k", [new_message("k", "row-1", PHONE, "Olá", Route("mock"))], Route("mock"))
    assert (rows[0].message_id, rows[0].replayed) == (legacy_id, True)
    assert store.count_external_ids("k", ["c1", "row-1", "new"]) == 2
    claim = store.claim(legacy_id, take_over_expired=True)
    assert (claim.outcome, claim.body) == ("claimed", "Olá")
