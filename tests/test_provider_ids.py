"""Where a provider's message id finds our message: a hash a provider, a day and a 4096th of the ids
(lib/provider_ids.lua), against a real Redis, with the clock moved by hand."""

import pytest

from dispatcher import redis_keys, statuses
from dispatcher.accounts import key_id
from dispatcher.messages import Route
from dispatcher.services import build_services
from dispatcher.settings import load_settings
from providers.inbound import StatusReport
from tasks.delivery import Outcome, record
from tasks.envelope import publishers
from tests.conftest import API_KEY

DAY = 86400
WAMID = "wamid.HBgNNTU2NDk5OTk5ODg4OBUCABEYEjQ1RjY3QTg5QkNERUYwMTIzNAA="  # a long one: over 64 bytes with our id


@pytest.fixture
def services(base_env, clock):
    settings = load_settings({**base_env, "MESSAGE_RETENTION_DAYS": "30"})
    return build_services(settings, publishers(settings.queue_name), clock)


def sent(services, external_id: str, provider_message_id: str) -> str:
    accepted = services.messages.accept(key_id(API_KEY), "+5564999998888", "Olá", external_id, Route("mock"))
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


def test_a_report_for_an_id_nobody_sent_is_parked(services, redis_client):
    sent(services, "c-1", WAMID)
    assert services.reports.apply(delivered(WAMID + "x")) == "parked"
    assert redis_client.exists(redis_keys.EARLY_REPORTS.key("mock", WAMID + "x"))


def test_a_message_indexed_before_the_hashes_is_still_found(services, redis_client):
    message_id = sent(services, "c-1", "p-new")
    redis_client.set(redis_keys.PROVIDER_ID.key("mock", "p-old"), message_id)  # as the layout before wrote it
    assert services.reports.apply(delivered("p-old")) == "ok"
    assert services.store.get(message_id).status == statuses.DELIVERED
