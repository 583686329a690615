"""The indexes kept by the day (lib/day_index.lua): where a provider's message id finds our message, and whose a
contact's word through a sender is; against a real Redis, with the clock moved by hand."""

import hashlib

import pytest
import redis

from dispatcher import redis_keys, statuses
from dispatcher.accounts import key_id
from dispatcher.messages import Route
from dispatcher.services import build_services
from dispatcher.settings import load_settings
from dispatcher.times import iso
from providers.inbound import PreferenceChange, StatusReport
from tasks.delivery import Outcome, record
from tasks.envelope import publishers
from tests.conftest import API_KEY, OTHER_API_KEY

DAY = 86400
WAMID = "wamid.HBgNNTU2NDk5OTk5ODg4OBUCABEYEjQ1RjY3QTg5QkNERUYwMTIzNAA="  # a long one: over 64 bytes with our id


@pytest.fixture
def services(base_env, clock):
    settings = load_settings({**base_env, "MESSAGE_RETENTION_DAYS": "30"})
    return build_services(settings, publishers(settings.queue_name), clock)


PHONE = "+5564999998888"


def sent(services, external_id: str, provider_message_id: str, key: str = API_KEY) -> str:
    accepted = services.messages.accept(key_id(key), PHONE, "Olá", external_id, Route("mock"))
    claim = services.store.claim(accepted.message_id, take_over_expired=True)
    outcome = Outcome(statuses.SENT, provider_message_id=provider_message_id)
    assert record(services.store, accepted.message_id, outcome, claim.attempt) == "ok"
    return accepted.message_id


def delivered(provider_message_id: str) -> StatusReport:
    return StatusReport("mock", provider_message_id, statuses.DELIVERED, f"{provider_message_id}:delivered")


def test_a_report_weeks_after_the_send_finds_its_message(services, clock, redis_client):
    message_id = sent(services, "c-1", WAMID)
    (index,) = redis_client.keys("dispatch:pmids:*")
    assert redis_keys.PROVIDER_IDS.matches(index)
    assert redis_client.object("encoding", index) in ("ziplist", "listpack")  # the id's digest, not the id
    record_key = redis_keys.MESSAGE.key(message_id)
    assert abs(redis_client.ttl(index) - redis_client.ttl(record_key)) <= 1  # it goes with the messages it finds
    clock.now += 29 * DAY
    assert services.reports.apply(delivered(WAMID)) == "ok"
    assert services.store.get(message_id).status == statuses.DELIVERED


def test_a_report_of_a_long_provider_id_keeps_the_record_compact_and_is_applied_once(services, redis_client):
    message_id = sent(services, "c-1", WAMID)
    key = redis_keys.MESSAGE.key(message_id)
    assert services.reports.apply(delivered(WAMID)) == "ok"
    assert services.reports.apply(delivered(WAMID)) == "duplicate"
    assert redis_client.object("encoding", key) in ("ziplist", "listpack")
    # A record written before: its created_at in ISO text, a report seen under its whole key.
    redis_client.hdel(key, "t0")
    redis_client.hset(key, mapping={"created_at": "2026-12-01T10:00:00.000Z", f"report:{WAMID}:read": 1})
    assert services.reports.apply(StatusReport("mock", WAMID, statuses.READ, f"{WAMID}:read")) == "duplicate"


def test_a_report_for_an_id_nobody_sent_is_parked(services, redis_client):
    sent(services, "c-1", WAMID)
    assert services.reports.apply(delivered(WAMID + "x")) == "parked"
    assert redis_client.exists(redis_keys.EARLY_REPORTS.key("mock", WAMID + "x"))


def test_an_entry_whose_message_holds_another_provider_id_finds_nothing(services, redis_client):
    """As if two provider ids' digests met: the report finds no message rather than the wrong one."""
    message_id = sent(services, "c-1", WAMID)
    redis_client.hset(redis_keys.MESSAGE.key(message_id), "pmid", "another")
    assert services.reports.apply(delivered(WAMID)) == "parked"
    assert services.store.get(message_id).status == statuses.SENT


def test_a_message_indexed_before_the_hashes_is_still_found(services, redis_client):
    message_id = sent(services, "c-1", "p-old")
    redis_client.delete(*redis_client.keys("dispatch:pmids:*"))  # indexed as the layout before indexed it:
    redis_client.set(redis_keys.PROVIDER_ID.key("mock", "p-old"), message_id)
    assert services.reports.apply(delivered("p-old")) == "ok"
    assert services.store.get(message_id).status == statuses.DELIVERED


def opted_out(services) -> set[str]:
    return {key for key in (API_KEY, OTHER_API_KEY) if services.contacts.opted_out(key_id(key), [PHONE])[0]}


def test_a_providers_word_weeks_after_a_send_is_the_account_that_sent_last(services, clock):
    sent(services, "c-1", "p-1", key=OTHER_API_KEY)
    clock.now += 3 * DAY
    sent(services, "c-2", "p-2", key=API_KEY)  # the last one to write to the number from this sender
    clock.now += 20 * DAY
    assert services.contacts.preference_changed(PreferenceChange("mock", "", PHONE, opted_out=True)) == "changed"
    assert opted_out(services) == {API_KEY}


def test_whose_a_number_is_noted_before_the_day_index_still_counts(services, redis_client):
    sent(services, "c-1", "p-1", key=API_KEY)
    sent(services, "c-2", "p-2", key=OTHER_API_KEY)
    for key in redis_client.keys("dispatch:sent-to:*"):
        redis_client.delete(key)
    redis_client.hset(redis_keys.REACH.key(PHONE), "by:mock:", key_id(OTHER_API_KEY))  # as the layout before wrote
    assert services.contacts.preference_changed(PreferenceChange("mock", "", PHONE, opted_out=True)) == "changed"
    assert opted_out(services) == {OTHER_API_KEY}


def test_a_message_delivered_and_read_hours_after_it_was_sent_keeps_its_history_on_its_record(
    services, clock, redis_client
):
    message_id = sent(services, "c-1", WAMID)
    key = redis_keys.MESSAGE.key(message_id)
    clock.now += 3.2
    report = StatusReport("mock", WAMID, statuses.DELIVERED, "d", clock.now - 0.8, provider_status="delivered")
    assert services.reports.apply(report) == "ok"
    clock.now += 7 * 3600
    assert (
        services.reports.apply(StatusReport("mock", WAMID, statuses.READ, "r", clock.now - 1, provider_status="READ"))
        == "ok"
    )
    assert not redis_client.exists(redis_keys.HISTORY.key(message_id))
    assert redis_client.object("encoding", key) in ("ziplist", "listpack")
    on_the_record = services.store.get(message_id).history
    assert services.reports.apply(StatusReport("mock", WAMID, statuses.DELIVERED, "d2")) == "stale"  # one too many
    assert redis_client.exists(redis_keys.HISTORY.key(message_id))
    history = services.store.get(message_id).history
    assert history[:-1] == on_the_record  # moved to the log as they were
    assert [entry["status"] for entry in history] == ["queued", "sending", "sent", "delivered", "read", "delivered"]
    assert history[3] == {
        "status": "delivered",
        "at": iso(clock.now - 7 * 3600),
        "source": "mock webhook",
        "provider_status": "delivered",
        "provider_at": iso(clock.now - 7 * 3600 - 0.8),
    }
    assert history[4]["provider_status"] == "READ" and history[4]["provider_at"] == iso(clock.now - 1)
    assert history[5]["ignored"] == "message already read"


def test_a_step_after_a_report_moves_the_history_to_its_log_in_order(services, clock, redis_client):
    message_id = sent(services, "c-1", WAMID)
    assert services.reports.apply(delivered(WAMID)) == "ok"
    retry = {"source": "an operator", "reason": "for the test"}
    assert services.store.advance(message_id, statuses.READ, (statuses.DELIVERED,), detail=retry) == "ok"
    key = redis_keys.MESSAGE.key(message_id)
    assert redis_client.hget(key, "steps") == "+" and not redis_client.hexists(key, "reports")
    statuses_in_order = [entry["status"] for entry in services.store.get(message_id).history]
    assert statuses_in_order == ["queued", "sending", "sent", "delivered", "read"]


def day_hash(name: str, value: str, day: int) -> tuple[str, str]:
    """The hash and the field as the day index wrote them before its fields were packed: 16 hex digits."""
    digest = hashlib.sha1(value.encode()).hexdigest()
    return f"dispatch:{name}:{day}:{digest[:3]}", digest[3:19]


def test_the_provider_ids_index_holds_an_8_byte_digest_and_a_16_byte_id(services, clock, redis_url):
    message_id = sent(services, "c-1", "p-1")
    raw_client = redis.Redis.from_url(redis_url)  # bytes, as Redis holds them
    key, digits = day_hash("pmids:mock", "p-1", int(clock.now // DAY))
    assert raw_client.hgetall(key) == {bytes.fromhex(digits): bytes.fromhex(message_id[4:].replace("-", ""))}


def test_a_provider_id_indexed_as_text_before_is_still_found(services, clock, redis_client):
    message_id = sent(services, "c-1", "p-1")
    key, digits = day_hash("pmids:mock", "p-1", int(clock.now // DAY))
    redis_client.delete(key)
    redis_client.hset(key, digits, message_id)
    clock.now += 3 * DAY
    report = StatusReport("mock", "p-1", statuses.DELIVERED, "p-1:delivered")
    assert services.reports.apply(report) == "ok"
    assert services.store.get(message_id).status == statuses.DELIVERED


def test_whose_a_number_is_noted_as_text_before_still_counts(services, clock, redis_client):
    sent(services, "c-1", "p-1", key=API_KEY)
    key, digits = day_hash("sent-to:mock:", PHONE, int(clock.now // DAY))
    redis_client.delete(key)
    redis_client.hset(key, digits, key_id(OTHER_API_KEY))  # another account's, as the layout before wrote it
    assert services.contacts.preference_changed(PreferenceChange("mock", "", PHONE, opted_out=True)) == "changed"
    assert opted_out(services) == {OTHER_API_KEY}
