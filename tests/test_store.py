"""The store's atomic steps against a real Redis: idempotency, claims and forward-only statuses, and how a
message is laid out (what a sent message keeps, and that messages written by the layout before still replay
and send)."""

import hashlib
import json
import threading
import time
import uuid

import pytest
import redis

from dispatcher import history, redis_keys, statuses
from dispatcher.accounts import key_id
from dispatcher.failed_messages import FailedMessages
from dispatcher.messages import IdempotencyConflict, MessageService, Route, new_message
from dispatcher.names import message_id_for
from dispatcher.record_names import readable
from dispatcher.services import build_services
from dispatcher.settings import load_settings
from dispatcher.store import ROWS_PER_SCRIPT, MessageStore, NewMessage, connect
from dispatcher.times import iso
from providers.inbound import StatusReport
from tasks.delivery import Outcome, record
from tasks.envelope import publishers
from tests.conftest import wait_for

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


def test_a_group_claim_stopped_by_an_error_still_counts_what_it_moved(service, store, redis_client):
    """The scripts add up their counters and write them when they end (lib/lifecycle.lua: flush_deferred): one that
    stops with an error after some moves must still count them, or the counts part from the records for good."""
    rows = [new_message("k", f"row-{n}", PHONE, "Olá", MOCK) for n in range(3)]
    batch_id, _ = service.accept_batch("k", rows, MOCK)
    redis_client.delete(redis_keys.CONTENT.key(rows[1].message_id))  # row 1 has nothing to send: the claim stops
    with pytest.raises(redis.ResponseError, match="NO_CONTENT"):
        store.claim_group(batch_id, [row.message_id for row in rows])
    assert store.statuses_of([row.message_id for row in rows]) == ["sending", "queued", "queued"]
    assert (store.counts()["sending"], store.counts()["queued"]) == (1, 2)
    batch = store.batch(batch_id)
    assert (batch["count_sending"], batch["count_queued"]) == ("1", "2")
    lease = float(redis_client.hget(redis_keys.MESSAGE.key(rows[0].message_id), "lease_until"))
    assert redis_client.zscore(redis_keys.PENDING.key(), rows[0].message_id) == lease  # watched until its lease ends


def test_unfinished_messages_are_watched_until_they_finish(service, store, redis_client):
    message_id = service.accept("k", "+5564999998888", "hi", "ext-1", MOCK).message_id
    assert redis_client.zscore("dispatch:pending", message_id) is not None
    store.claim(message_id, take_over_expired=True)
    store.advance(message_id, statuses.SENT, (statuses.SENDING,))
    assert redis_client.zscore("dispatch:pending", message_id) is None


# --- how a message is laid out: what a sent message keeps (docs/performance.md), and what an upgrade finds ---

PHONE = "+5564999998888"
TEMPLATE = {"name": "consulta", "language": "pt_BR", "components": [{"type": "body", "parameters": [1234567890123456]}]}


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


def test_a_history_too_long_for_its_record_moves_to_its_log_in_order(redis_url, redis_client, clock):
    """Short steps stay on the record while they fit a compact record; the step that does not fit moves them
    all, in order, to the log, which holds every later one."""
    store = MessageStore(
        connect(redis_url), retention_seconds=3600, queued_grace_seconds=300, lease_seconds=5, clock=clock
    )
    service = MessageService(store, lambda i: ("test-queue", f"task:{i}"), lambda b, s, e: ("q", "c"), chunk_size=2)
    message_id = service.accept("k", PHONE, "Olá", "c1", Route("mock")).message_id
    key, log = redis_keys.MESSAGE.key(message_id), redis_keys.HISTORY.key(message_id)
    attempt = 0
    while not redis_client.exists(log):  # each claim after the last one's lease ran out: a step `sending` each
        attempt += 1
        assert attempt <= 6, "the steps should have outgrown the record by now"
        steps = redis_client.hget(key, "steps")
        assert store.claim(message_id, take_over_expired=True).attempt == attempt
        clock.now += 6
    assert attempt > 2 and steps.count("sending+") == attempt - 1  # each step stayed on the record until then
    assert redis_client.hget(key, "steps") == "+"
    assert len(redis_client.get(log).splitlines()) == attempt
    assert record(store, message_id, Outcome(statuses.SENT, provider_message_id="wamid.1"), attempt) == "ok"
    assert redis_client.object("encoding", key) in ("ziplist", "listpack")
    history = store.get(message_id).history
    assert [(entry["status"], entry.get("attempt")) for entry in history] == [
        ("queued", None),
        *(("sending", n) for n in range(1, attempt + 1)),
        ("sent", None),
    ]
    assert [entry["at"] for entry in history[1:-1]] == [iso(clock.now - 6 * n) for n in range(attempt, 0, -1)]


def test_a_history_logged_before_steps_existed_goes_on_in_its_log(service, store, redis_client):
    message_id = service.accept("k", PHONE, "Olá", "c1", Route("mock")).message_id
    log = redis_keys.HISTORY.key(message_id)
    redis_client.set(log, '{"status":"retrying","at":"2026-01-01T00:00:00.000Z"}\n')  # as the layout before wrote
    finish(store, message_id, Outcome(statuses.SENT, provider_message_id="wamid.1"))
    assert [entry["status"] for entry in store.get(message_id).history] == ["queued", "retrying", "sending", "sent"]
    assert redis_client.hget(redis_keys.MESSAGE.key(message_id), "steps") == "+"


@pytest.mark.parametrize("digits", [64, 32])
def test_a_message_fingerprinted_with_hex_digits_still_replays_and_still_conflicts(service, redis_client, digits):
    """Records written before fingerprints were 64-bit integers hold hex digits of the SHA-256: all 64, or the
    first 32 (when they were cut to 128 bits)."""
    accepted = service.accept("k", PHONE, "Olá", "c1", Route("mock"))
    whole = hashlib.sha256(f"{PHONE}\x00Olá\x00".encode()).digest()
    key = redis_keys.MESSAGE.key(accepted.message_id)
    assert redis_client.hget(key, "fp") == str(int.from_bytes(whole[:8], "big", signed=True))
    assert redis_client.object("encoding", key) in ("ziplist", "listpack")
    redis_client.hdel(key, "fp")  # and as written before the short names (dispatcher/record_names.py)
    redis_client.hset(key, "fingerprint", whole.hex()[:digits])
    assert service.accept("k", PHONE, "Olá", "c1", Route("mock")).replayed
    _, rows = service.accept_batch("k", [new_message("k", "c1", PHONE, "Olá", Route("mock"))], Route("mock"))
    assert rows[0].replayed
    with pytest.raises(IdempotencyConflict):
        service.accept("k", PHONE, "Olá!", "c1", Route("mock"))


def test_a_record_keeps_its_times_as_epoch_milliseconds_and_one_written_before_keeps_its_iso_text(
    service, store, redis_client
):
    accepted = service.accept("k", PHONE, "Olá", "c1", Route("mock"))
    key = redis_keys.MESSAGE.key(accepted.message_id)
    kept = redis_client.hget(key, "t0")
    assert kept.isdigit() and iso(int(kept) / 1000) == accepted.queued_at == store.get(accepted.message_id).created_at
    redis_client.hdel(key, "t0")  # and as written before the short names (dispatcher/record_names.py)
    redis_client.hset(key, mapping={"created_at": "2026-01-02T03:04:05.678Z", "updated_at": "2026-01-02T03:04:06.000Z"})
    message = store.get(accepted.message_id)
    assert (message.created_at, message.updated_at) == ("2026-01-02T03:04:05.678Z", "2026-01-02T03:04:06.000Z")
    assert message.history[0] == {"status": "queued", "at": "2026-01-02T03:04:05.678Z"}


def test_a_record_whose_history_it_holds_says_by_it_when_it_last_moved(base_env, clock, redis_client):
    """No `updated_at` is kept while the steps are in the record (they say it); an ignored report is not a move;
    when a step that is not a move takes the history to the log, the record keeps the time of the last move."""
    settings = load_settings({**base_env, "MESSAGE_RETENTION_DAYS": "30"})
    services = build_services(settings, publishers(settings.queue_name), clock)
    accepted = services.messages.accept("k", PHONE, "Olá", "c1", MOCK)
    key = redis_keys.MESSAGE.key(accepted.message_id)
    shown = lambda: services.store.get(accepted.message_id).updated_at  # noqa: E731
    assert shown() == accepted.queued_at == iso(clock.now)
    clock.now += 1.5
    finish(services.store, accepted.message_id, Outcome(statuses.SENT, provider_message_id="wamid.1"))
    sent_at = iso(clock.now)
    clock.now += 3
    assert services.reports.apply(StatusReport("mock", "wamid.1", statuses.DELIVERED, "d", provider_status="delivered"))
    delivered_at = iso(clock.now)
    assert shown() == delivered_at != sent_at
    assert not redis_client.hexists(key, "updated_at")
    clock.now += 60
    late = StatusReport("mock", "wamid.1", statuses.SENT, "s", provider_status="sent")
    assert services.reports.apply(late) == "stale"
    assert shown() == delivered_at  # ignored, not a move
    clock.now += 60
    odd = StatusReport("mock", "wamid.1", statuses.SENT, "s2", provider_status="not a word")  # a JSON step
    assert services.reports.apply(odd) == "stale"
    assert redis_client.hget(key, "steps") == history.IN_THE_LOG
    assert shown() == delivered_at
    assert [entry["status"] for entry in services.store.get(accepted.message_id).history][-2:] == ["sent", "sent"]
    clock.now += 60
    assert services.reports.apply(StatusReport("mock", "wamid.1", statuses.READ, "r", provider_status="read"))
    assert shown() == iso(clock.now)  # a move with its history in the log writes it


def test_a_batchs_rows_are_written_a_slice_at_a_time_while_the_next_ones_are_still_coming(store, redis_client):
    """The rows reach the store as they are validated: each full slice is written while the next is produced
    (the generator below waits for the first slice's rows before it gives the next one), in the rows' order."""
    count = ROWS_PER_SCRIPT + 5
    ids = [message_id_for("k", f"r{n}") for n in range(count)]

    def rows():
        for n in range(count):
            if n == ROWS_PER_SCRIPT:
                wait_for(lambda: redis_client.exists(redis_keys.MESSAGE.key(ids[0])), 10, what="the first slice")
            yield NewMessage(ids[n], f"r{n}", PHONE, "Olá", "1")

    outcomes = store.create_batch("batch-t", "k", rows(), time.time(), {"provider": "mock"})
    assert [outcome.created for outcome in outcomes] == [True] * count
    assert store.batch_message_ids("batch-t", 0, count) == ids


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
    fields = readable(redis_client.hgetall(redis_keys.MESSAGE.key(new.message_id)))  # with the long names, as then
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
    history = redis_keys.HISTORY_LIST.key(legacy_id)
    redis_client.rpush(history, json.dumps({"status": "queued", "at": "2026-12-01T10:00:00.000Z"}))
    assert record(store, legacy_id, Outcome(statuses.SENT, provider_message_id="p1"), claim.attempt) == "ok"
    kept = redis_client.ttl(redis_keys.MESSAGE.key(legacy_id))
    assert kept > 0
    assert redis_client.ttl(redis_keys.EXTERNAL_ID.key("k", "c1")) == kept  # its keys go with it
    assert redis_client.ttl(history) == kept
