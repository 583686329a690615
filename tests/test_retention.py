"""Retention counts from when a message finishes: nothing that still waits expires, and the counts agree
with the records that exist.

A message can wait longer than MESSAGE_RETENTION_DAYS: a `send_at` weeks ahead, a daily cap or warm-up
holding a backlog, a paused sender or batch. Its record, history and external_id mapping must outlive
the wait; once it finishes they are kept for the retention after the end of that (UTC) day, and its
count, kept in that day's bucket, expires with them.
"""

import datetime
import json

import pytest

from dispatcher import statuses
from dispatcher.messages import MessageService, Route
from dispatcher.names import message_id_for
from dispatcher.redis_keys import CONTENT, HISTORY, MESSAGE
from dispatcher.store import MessageStore, NewMessage, connect
from tasks.delivery import Outcome, record
from tests.conftest import auth

DAY = 86400
RETENTION = 2 * DAY


@pytest.fixture
def store(redis_url, redis_client, clock):
    return MessageStore(
        connect(redis_url), retention_seconds=RETENTION, queued_grace_seconds=300, lease_seconds=5, clock=clock
    )


@pytest.fixture
def service(store):
    return MessageService(store, lambda i: ("q", f"task:{i}"), lambda b, s, e: ("q", f"chunk:{b}:{s}:{e}"), 10)


def test_a_message_waiting_past_the_retention_keeps_its_record_and_its_content(store, service, clock, redis_client):
    accepted = service.accept("k", "+5564999998888", "hi", "ext-1", Route("mock"), send_at=clock.now + 10 * DAY)
    claim_later = store.claim(accepted.message_id, take_over_expired=True)
    assert claim_later.outcome == "scheduled"
    record_key, log, content = (family.key(accepted.message_id) for family in (MESSAGE, HISTORY, CONTENT))
    for key in (record_key, content):
        assert redis_client.ttl(key) == -1, key  # no expiry while it waits
    clock.now += 10 * DAY  # its time comes, long past the two days of retention
    claim = store.claim(accepted.message_id, take_over_expired=True)
    assert claim.claimed
    assert record(store, accepted.message_id, Outcome(statuses.SENT, provider_message_id="p"), claim.attempt) == "ok"
    day = int(clock.now // DAY)
    expires_in = (day + 1) * DAY + RETENTION - redis_client.time()[0]  # an instant, which Redis reads on its clock
    assert abs(redis_client.ttl(record_key) - expires_in) < 5
    assert not redis_client.exists(log)  # its short history is on the record
    assert not redis_client.exists(content)  # sent: nothing reads its text again
    assert abs(redis_client.ttl(f"dispatch:counts:{day}") - expires_in) < 5
    assert store.counts() == {"scheduled": 0, "sending": 0, "sent": 1}
    assert service.accept("k", "+5564999998888", "hi", "ext-1", Route("mock")).replayed  # the record answers


def test_a_history_that_outgrows_its_record_after_the_message_finished_is_kept_as_long_as_it(
    store, service, clock, redis_client
):
    """A report after `sent` is a JSON step: the history moves to a log key then, which must expire with its
    record (a log without a retention would be kept for ever)."""
    accepted = service.accept("k", "+5564999998888", "hi", "ext-1", Route("mock"))
    claim = store.claim(accepted.message_id, take_over_expired=True)
    assert record(store, accepted.message_id, Outcome(statuses.SENT, provider_message_id="p"), claim.attempt) == "ok"
    record_key, log = MESSAGE.key(accepted.message_id), HISTORY.key(accepted.message_id)
    assert not redis_client.exists(log)
    report = {"source": "mock webhook", "provider_status": "delivered"}
    assert store.advance(accepted.message_id, statuses.DELIVERED, (statuses.SENT,), detail=report) == "ok"
    assert redis_client.hget(record_key, "steps") == "+"
    assert redis_client.pttl(log) > 0
    assert 0 <= redis_client.pttl(record_key) - redis_client.pttl(log) < 1000
    message = store.get(accepted.message_id)
    assert [entry["status"] for entry in message.history] == ["queued", "sending", "sent", "delivered"]
    assert message.history[-1]["provider_status"] == "delivered"


def test_a_batch_paused_for_weeks_keeps_its_rows(store, service, clock, redis_client):
    rows = [NewMessage(message_id_for("k", f"e-{n}"), f"e-{n}", "+5564999998888", "hi", "f") for n in range(3)]
    batch_id, _ = service.accept_batch("k", rows, Route("mock"))
    assert store.set_batch_state(batch_id, "paused", ("running",)) == "ok"
    for key in [
        store.batch_key(batch_id),
        store.batch_key(batch_id) + ":messages",
        store.message_key(rows[0].message_id),
    ]:
        assert redis_client.ttl(key) == -1, key
    assert service.resume_batch(batch_id) == "ok"


def test_counts_agree_with_the_records_as_days_pass(store, service, clock, redis_client):
    first = service.accept("k", "+5564999998888", "hi", "ext-1", Route("mock")).message_id
    claim = store.claim(first, take_over_expired=True)
    record(store, first, Outcome(statuses.SENT, provider_message_id="p"), claim.attempt)
    clock.now += DAY
    second = service.accept("k", "+5564999998888", "hi", "ext-2", Route("mock")).message_id
    assert store.counts() == {"queued": 1, "sending": 0, "sent": 1}
    redis_client.delete(f"dispatch:counts:{int((clock.now - DAY) // DAY)}")  # as if yesterday's bucket expired
    assert store.counts() == {"queued": 1, "sending": 0}
    assert second


def test_an_operator_retry_makes_a_failed_message_wait_again_without_expiry(store, service, redis_client):
    from dispatcher.failed_messages import FailedMessages

    message_id = service.accept("k", "+5564999998888", "hi", "ext-1", Route("mock")).message_id
    claim = store.claim(message_id, take_over_expired=True)
    record(store, message_id, Outcome(statuses.FAILED, error="{}"), claim.attempt)
    assert redis_client.ttl(store.message_key(message_id)) > 0
    assert FailedMessages(store).retry(message_id, lambda i: ("q", "task"), 300) == "ok"
    assert redis_client.ttl(store.message_key(message_id)) == -1
    assert store.counts().get("failed", 0) == 0 and store.counts()["queued"] == 1


@pytest.mark.parametrize("route", ["/v1/messages/send", "/v1/messages/bulk"])
def test_a_send_at_beyond_the_retention_is_refused_naming_it(client, route):
    later = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=31)).isoformat()
    message = {"recipient_phone": "+5564999998888", "message_body": "hi", "external_id": "far"}
    body = {**message, "send_at": later} if route.endswith("send") else {"messages": [message], "send_at": later}
    answer = client.post(route, json=body, headers=auth())
    assert answer.status_code == 400
    assert answer.json["field"] == "send_at"
    assert "30 days" in answer.json["error"]


def test_a_history_in_its_log_before_the_message_finished_lives_and_dies_with_its_record(
    store, service, clock, redis_client
):
    """A retry's delay is a JSON step, so the history of a message retried is in its log: the log expires with the
    record when it fails, stays while an operator's retry makes it wait again, and expires with it once sent."""
    from dispatcher.failed_messages import FailedMessages

    message_id = service.accept("k", "+5564999998888", "hi", "ext-1", Route("mock")).message_id
    record_key, log = MESSAGE.key(message_id), HISTORY.key(message_id)
    failure = json.dumps({"kind": "transient", "code": "503", "message": "busy"})
    for outcome in (Outcome(statuses.RETRYING, error=failure, retry_in=1), Outcome(statuses.FAILED, error=failure)):
        claim = store.claim(message_id, take_over_expired=True)
        assert record(store, message_id, outcome, claim.attempt) == "ok"
        clock.now += 2
    assert redis_client.hget(record_key, "steps") == "+"
    assert 0 <= redis_client.pttl(record_key) - redis_client.pttl(log) < 1000
    assert FailedMessages(store).retry(message_id, lambda i: ("q", "task"), 300) == "ok"
    assert redis_client.ttl(record_key) == redis_client.ttl(log) == -1
    claim = store.claim(message_id, take_over_expired=True)
    assert record(store, message_id, Outcome(statuses.SENT, provider_message_id="p"), claim.attempt) == "ok"
    assert redis_client.pttl(log) > 0
    assert 0 <= redis_client.pttl(record_key) - redis_client.pttl(log) < 1000
