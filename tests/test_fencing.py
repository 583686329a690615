"""Outcome writes are fenced to the claim that made them.

A provider call can outlive its lease while its worker is alive (an answer that trickles in, a DNS
stall): another worker then takes the message over. The first worker's late outcome must change
nothing, or it would overwrite the second claim (and its `retrying` would send a third time).
"""

import threading
import time
from urllib.parse import urlsplit

import pytest

from dispatcher import statuses
from dispatcher.messages import MessageService, Route
from dispatcher.store import MessageStore, connect
from tasks.delivery import Outcome, record, record_durably
from tasks.leases import LeaseKeeper
from tests.conftest import auth, wait_for
from tests.fakes import meta
from tests.fakes.redis_proxy import RedisProxy


@pytest.fixture
def store(redis_url, redis_client, clock):
    return MessageStore(
        connect(redis_url), retention_seconds=3600, queued_grace_seconds=300, lease_seconds=5, clock=clock
    )


@pytest.fixture
def message_id(store, clock):
    service = MessageService(store, lambda i: ("q", f"task:{i}"), lambda b, s, e: ("q", "chunk"), 10)
    return service.accept("k", "+5564999998888", "hi", "ext-1", Route("mock")).message_id


def test_a_late_outcome_of_a_claim_taken_over_changes_nothing(store, clock, message_id):
    first = store.claim(message_id, take_over_expired=True)
    clock.now += 6  # the first call outlives its 5 s lease; its worker is still alive
    second = store.claim(message_id, take_over_expired=True)
    assert (first.attempt, second.attempt) == (1, 2) and second.claimed

    late = record(store, message_id, Outcome(statuses.RETRYING, error="{}", retry_in=1.0), attempt=first.attempt)
    assert late == "stale"
    message = store.get(message_id)
    assert (message.status, message.attempts) == (statuses.SENDING, 2)

    assert record(store, message_id, Outcome(statuses.SENT, provider_message_id="p-2"), attempt=2) == "ok"
    message = store.get(message_id)
    assert (message.status, message.provider_message_id) == (statuses.SENT, "p-2")


def test_a_late_success_after_a_take_over_does_not_overwrite_the_second_claim(store, clock, message_id):
    first = store.claim(message_id, take_over_expired=True)
    clock.now += 6
    store.claim(message_id, take_over_expired=True)
    assert record(store, message_id, Outcome(statuses.SENT, provider_message_id="p-1"), attempt=first.attempt) == (
        "stale"
    )
    assert store.get(message_id).status == statuses.SENDING
    assert not store.redis.keys("dispatch:pmid*")  # the late answer's provider id finds nothing


def test_the_claim_that_holds_the_message_records_its_outcome(store, message_id):
    claim = store.claim(message_id, take_over_expired=True)
    assert record(store, message_id, Outcome(statuses.FAILED, error="{}"), attempt=claim.attempt) == "ok"
    assert store.get(message_id).status == statuses.FAILED


def test_a_call_trickling_past_its_lease_keeps_its_message_and_sends_once(fake_meta, make_app, start_worker):
    """End to end: the answer takes 6 s to trickle in, the lease is 3 s. The live worker keeps renewing the
    lease, so the reconciler (every second) never hands the message to another claim: Meta gets one request,
    and the message ends `sent` with that request's id."""
    fake_meta.trickle_seconds = 6
    env = {**meta.CASE.env(fake_meta), "SEND_LEASE_SECONDS": "3", "PROVIDER_READ_TIMEOUT": "10"}
    client = make_app(**env)
    worker = start_worker(**env)
    body = {"recipient_phone": "+5564999998888", "message_body": "Olá", "external_id": "slow-1"}
    message_id = client.post("/v1/messages/send", json=body, headers=auth()).json["message_id"]
    record = wait_for(
        lambda: (m := client.get(f"/v1/messages/{message_id}", headers=auth()).json)["status"] == "sent" and m,
        20,
        what="the slow send to be recorded",
    )
    assert len(fake_meta.received) == 1, worker.output[-3000:]
    assert record["attempts"] == 1
    assert record["provider_message_id"].startswith("wamid.")


def test_the_reconciler_leaves_alone_what_a_live_worker_renewed_after_it_looked(store, clock, message_id):
    claim = store.claim(message_id, take_over_expired=True)
    clock.now += 6  # the lease ran out, as far as the reconciler can tell when it reads
    read_at, overdue = store.overdue()
    assert message_id in overdue
    store.keep([(message_id, claim.attempt)], [], [])  # the worker's keeper renews it right then
    renewed = store.redis.zscore("dispatch:pending", message_id)
    assert store.rearm(overdue, read_at, read_at + 300) == []  # not republished, its deadline kept
    assert store.redis.zscore("dispatch:pending", message_id) == renewed
    clock.now += 10  # the worker died since: now it is overdue for real
    read_at, overdue = store.overdue()
    assert store.rearm(overdue, read_at, read_at + 300) == [message_id]


def test_the_keeper_renews_its_claims_and_reports_one_taken_over(store, clock, message_id):
    keeper = LeaseKeeper(store)
    first = store.claim(message_id, take_over_expired=True)
    with keeper.claims({message_id: first.attempt}):
        clock.now += 4
        keeper.keep_now()  # within the lease: renewed, 5 s from now
        assert float(store.redis.hget(store.message_key(message_id), "lease_until")) == clock.now + 5
        assert store.claim(message_id, take_over_expired=True).outcome == "busy"
        clock.now += 6  # renewals stopped (a Redis blip): another worker takes it over
        assert store.claim(message_id, take_over_expired=True).claimed
        keeper.keep_now()
        assert keeper.lost(message_id)
    assert not keeper.lost(message_id)  # forgotten with the block


def test_a_chunk_copy_that_lost_its_lock_leaves_the_live_copy_alone(store):
    member = "chunk:batch-1:0:500"
    store.redis.zadd("dispatch:pending", {member: 0})
    old = store.lock_chunk(member)
    store.redis.delete(f"dispatch:lock:{member}")  # its lease ran out while it ran (a frozen process)
    live = store.lock_chunk(member)
    assert old and live and old != live
    assert not store.unlock_chunk(member, old, done=True)  # the old copy ends: it may forget nothing
    assert store.redis.get(f"dispatch:lock:{member}") == live
    assert store.redis.zscore("dispatch:pending", member) is not None
    assert store.unlock_chunk(member, live, done=True)
    assert store.redis.zscore("dispatch:pending", member) is None


def test_an_outcome_lost_to_a_redis_blip_is_recorded_once_redis_is_back(redis_url, redis_client):
    """The provider has answered; Redis is unreachable for a moment (a proxy in front of it cuts every
    connection). Recording is tried again, not given up: a lost `sent` would become a resend."""
    parts = urlsplit(redis_url)
    proxy = RedisProxy(parts.port)
    try:
        store = MessageStore(connect(f"redis://127.0.0.1:{proxy.port}{parts.path}"), 3600, 300, 5)
        service = MessageService(store, lambda i: ("q", f"task:{i}"), lambda b, s, e: ("q", "chunk"), 10)
        message_id = service.accept("k", "+5564999998888", "hi", "blip-1", Route("mock")).message_id
        claim = store.claim(message_id, take_over_expired=True)
        proxy.cut_at(0)
        threading.Timer(1.0, proxy.heal).start()
        began = time.monotonic()
        answer = record_durably(store, message_id, Outcome(statuses.SENT, provider_message_id="p-1"), claim.attempt)
        assert answer == "ok" and time.monotonic() - began >= 0.9
        assert redis_client.hget(store.message_key(message_id), "status") == statuses.SENT
    finally:
        proxy.close()
