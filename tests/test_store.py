"""The store's atomic steps against a real Redis: idempotency, claims and forward-only statuses."""

import threading
import time

import pytest

from dispatcher import statuses
from dispatcher.accounts import key_id
from dispatcher.messages import IdempotencyConflict, MessageService, Route
from dispatcher.store import MessageStore, connect

MOCK = Route("mock")


@pytest.fixture
def store(redis_url, redis_client):
    return MessageStore(connect(redis_url), retention_seconds=3600, queued_grace_seconds=300, lease_seconds=2)


@pytest.fixture
def service(store):
    return MessageService(
        store,
        lambda message_id: ("test-queue", f"task:{message_id}"),
        lambda batch_id, start, stop: ("test-queue", f"chunk:{batch_id}:{start}:{stop}"),
        chunk_size=2,
    )


def test_a_replay_returns_the_first_message_and_creates_nothing(service, redis_client):
    first = service.accept("k", "+5564999998888", "hi", "ext-1", MOCK)
    again = service.accept("k", "+5564999998888", "hi", "ext-1", MOCK)
    assert again.replayed and not first.replayed
    assert again.message_id == first.message_id
    assert redis_client.lrange("test-queue", 0, -1) == [f"task:{first.message_id}"]


def test_same_external_id_with_another_payload_is_a_conflict(service):
    service.accept("k", "+5564999998888", "hi", "ext-1", MOCK)
    with pytest.raises(IdempotencyConflict):
        service.accept("k", "+5564999998888", "bye", "ext-1", MOCK)
    with pytest.raises(IdempotencyConflict):
        service.accept("k", "+5511999999999", "hi", "ext-1", MOCK)


def test_external_ids_are_scoped_per_api_key(service):
    first = service.accept(key_id("a"), "+5564999998888", "hi", "ext-1", MOCK)
    second = service.accept(key_id("b"), "+5564999998888", "hi", "ext-1", MOCK)
    assert first.message_id != second.message_id


def test_concurrent_requests_with_one_external_id_create_one_message(service, redis_client):
    results, barrier = [], threading.Barrier(16)

    def accept():
        barrier.wait()
        results.append(service.accept("k", "+5564999998888", "hi", "same", MOCK))

    threads = [threading.Thread(target=accept) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({result.message_id for result in results}) == 1
    assert sum(not result.replayed for result in results) == 1
    assert redis_client.llen("test-queue") == 1
    assert len(redis_client.keys("dispatch:msg:*[0-9a-f]")) == 1  # one record (and its content)


def test_a_message_is_claimed_once(service, store):
    message_id = service.accept("k", "+5564999998888", "hi", "ext-1", MOCK).message_id
    assert store.claim(message_id, take_over_expired=True).claimed
    second = store.claim(message_id, take_over_expired=True)
    assert not second.claimed and second.outcome == "busy"


def test_an_expired_lease_is_taken_over_or_reported(service, store):
    message_id = service.accept("k", "+5564999998888", "hi", "ext-1", MOCK).message_id
    assert store.claim(message_id, take_over_expired=True).attempt == 1
    time.sleep(2.1)  # the lease is 2 s: this test is about time passing
    assert store.claim(message_id, take_over_expired=False).outcome == "lease_expired"
    take_over = store.claim(message_id, take_over_expired=True)
    assert take_over.claimed and take_over.attempt == 2


def test_finished_messages_are_not_claimed_again(service, store):
    message_id = service.accept("k", "+5564999998888", "hi", "ext-1", MOCK).message_id
    store.claim(message_id, take_over_expired=True)
    assert store.advance(message_id, statuses.SENT, (statuses.SENDING,), provider_message_id="p1") == "ok"
    assert store.claim(message_id, take_over_expired=True).outcome == statuses.SENT


def test_status_never_moves_backwards(service, store):
    message_id = service.accept("k", "+5564999998888", "hi", "ext-1", MOCK).message_id
    store.claim(message_id, take_over_expired=True)
    store.advance(message_id, statuses.SENT, (statuses.SENDING,))
    assert store.advance(message_id, statuses.RETRYING, (statuses.SENDING,)) == statuses.SENT
    message = store.get(message_id)
    assert message.status == statuses.SENT
    assert [entry["status"] for entry in message.history] == ["queued", "sending", "sent"]
    assert store.counts() == {"queued": 0, "sending": 0, "sent": 1}


def test_unfinished_messages_are_watched_until_they_finish(service, store, redis_client):
    message_id = service.accept("k", "+5564999998888", "hi", "ext-1", MOCK).message_id
    assert redis_client.zscore("dispatch:pending", message_id) is not None
    store.claim(message_id, take_over_expired=True)
    store.advance(message_id, statuses.SENT, (statuses.SENDING,))
    assert redis_client.zscore("dispatch:pending", message_id) is None
