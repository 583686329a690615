"""The short names six fields of a message record are stored under (dispatcher/record_names.py): what Redis holds,
and that a record written before, with the long names, is still claimed, sent, reported, counted, shown, replayed,
retried and told of, as a record written now is. Against a real Redis, through the API and the store, the worker's
steps taken as a worker takes them."""

from __future__ import annotations

import json
import time

import pytest

from dispatcher import redis_keys, statuses
from dispatcher.accounts import key_id
from dispatcher.messages import Route
from dispatcher.record_names import STORED, readable, stored
from dispatcher.services import build_services
from dispatcher.settings import load_settings
from dispatcher.store import Move
from providers.inbound import IncomingMessage, StatusReport
from tasks.delivery import Outcome, record
from tasks.envelope import publishers
from tests.conftest import API_KEY, auth, operator

DAY = 86400
PHONE = "+5564999998888"
CALLBACK_URL = "https://reach.example/hooks/whatsapp"


@pytest.fixture
def services(base_env, clock):
    settings = load_settings({**base_env, "MESSAGE_RETENTION_DAYS": "30"})
    return build_services(settings, publishers(settings.queue_name), clock)


def as_written_before(redis_client, message_id: str) -> None:
    """Rename the record's short-named fields back to their long names, as the layout before wrote them."""
    key = redis_keys.MESSAGE.key(message_id)
    fields = redis_client.hgetall(key)
    short = [name for name in fields if name in STORED.values()]
    assert short, "a record written now has short names"
    redis_client.hdel(key, *short)
    redis_client.hset(key, mapping=readable({name: fields[name] for name in short}))


def test_names_are_stored_short_and_read_whole_whichever_way_a_record_was_written():
    whole = {"external_id": "c-1", "fingerprint": "12", "created_at": "1", "provider_message_id": "w", "status": "x"}
    assert stored(whole) == {"ext": "c-1", "fp": "12", "t0": "1", "pmid": "w", "status": "x"}
    assert readable(stored(whole)) == whole and readable(whole) == whole
    # Written before, moved since: the short name is the later one.
    assert readable({"finished_day": "20000", "fday": "20001"}) == {"finished_day": "20001"}


def sent_bulk_rows(client, services, redis_client) -> list[str]:
    """Two rows sent, the second renamed before its chunk claimed it (the claim reads its external_id and t0)."""
    rows = [{"recipient_phone": PHONE, "message_body": "Olá", "external_id": f"r-{n}"} for n in range(2)]
    answer = client.post("/v1/messages/bulk", json={"messages": rows}, headers=auth())
    assert answer.status_code == 200, answer.json
    batch_id, store = answer.json["batch_id"], services.store
    as_written_before(redis_client, answer.json["results"][1]["message_id"])
    _, claims = store.claim_group(batch_id, store.batch_message_ids(batch_id, 0, 2))
    assert [(claim.recipient, claim.external_id) for claim in claims] == [(PHONE, "r-0"), (PHONE, "r-1")]  # as sent
    for n, claim in enumerate(claims):
        outcome = Outcome(statuses.SENT, provider_message_id=f"wamid.{n}")
        assert record(store, claim.message_id, outcome, claim.attempt) == "ok"
    return [claim.message_id for claim in claims]


def test_a_sent_bulk_rows_record_holds_the_short_names_and_the_api_shows_the_whole_ones(client, services, redis_client):
    now, before = sent_bulk_rows(client, services, redis_client)
    fields = redis_client.hgetall(redis_keys.MESSAGE.key(now))
    assert set(STORED.values()) <= set(fields) and not set(STORED) & set(fields)
    assert redis_client.hget(redis_keys.MESSAGE.key(before), "steps") == fields["steps"]
    for n, message_id in enumerate((now, before)):
        shown = client.get(f"/v1/messages/{message_id}", headers=auth()).json
        assert shown["external_id"] == f"r-{n}" and shown["created_at"]
        assert [entry.get("provider_message_id") for entry in shown["history"]][-1] == f"wamid.{n}"


MOCK = Route("mock")


def accept(services, external_id: str, route: Route = MOCK) -> str:
    return services.messages.accept(key_id(API_KEY), PHONE, "Olá", external_id, route).message_id


def sent(services, message_id: str, provider_message_id: str) -> None:
    claim = services.store.claim(message_id, take_over_expired=True)
    assert (claim.recipient, claim.external_id) == (PHONE, services.store.get(message_id).external_id)  # as sent
    assert record(services.store, message_id, Outcome(statuses.SENT, provider_message_id), claim.attempt) == "ok"


def reported(services, provider_message_id: str, status: str) -> None:
    report = StatusReport("mock", provider_message_id, status, f"{provider_message_id}:{status}")
    assert services.reports.apply(report) == "ok"


def test_single_sends_written_before_go_the_whole_way_as_one_written_now(services, clock, redis_client):
    """One renamed before its claim (the claim reads its external_id), one after its send (the reports find it by
    its provider id and count it by the day it finished); both then read as the one written now."""
    clock.now = time.time()  # the outbox reads the time itself, for the reply below
    route = Route("mock", callback_url=CALLBACK_URL)
    now, before_claim, before_report = (accept(services, f"c-{n}", route) for n in range(3))
    as_written_before(redis_client, before_claim)
    for n, message_id in enumerate((now, before_claim, before_report)):
        sent(services, message_id, f"p-{n}")
    as_written_before(redis_client, before_report)
    clock.now += 3
    for n in range(3):
        reported(services, f"p-{n}", statuses.DELIVERED)
        again = StatusReport("mock", f"p-{n}", statuses.DELIVERED, f"p-{n}:{statuses.DELIVERED}")
        assert services.reports.apply(again) == "duplicate"
    sent_day = int(clock.now // DAY)
    clock.now += 2 * DAY  # read two days later: counted on the day it finished
    for n in range(3):
        reported(services, f"p-{n}", statuses.READ)

    store, raw = services.store, redis_client.hgetall(redis_keys.MESSAGE.key(now))
    for n, message_id in enumerate((before_claim, before_report), start=1):
        shown, shown_now = store.get(message_id), store.get(now)
        assert (shown.external_id, shown.provider_message_id, shown.status) == (f"c-{n}", f"p-{n}", statuses.READ)
        assert shown.created_at == shown_now.created_at
        assert [(e["status"], e["at"]) for e in shown.history] == [(e["status"], e["at"]) for e in shown_now.history]
        written = redis_client.hgetall(redis_keys.MESSAGE.key(message_id))
        assert (written["steps"], written["reports"]) == (raw["steps"], raw["reports"])
        chain = redis_keys.CALLBACK_CHAIN.key(message_id)
        told = [json.loads(item)["event"] for item in redis_client.lrange(chain, 0, -1)]
        assert told and {event["external_id"] for event in told} == {f"c-{n}"}
    day_counts = redis_client.hgetall(redis_keys.DAY_COUNTS.key(sent_day))
    assert day_counts.get(statuses.READ) == "3" and int(day_counts.get(statuses.DELIVERED, 0)) == 0

    reply = IncomingMessage("mock", "in-1", PHONE, "", "in:in-1", "Obrigado", in_reply_to="p-2")
    assert services.reports.receive(reply)[0] == "queued"
    (chain,) = redis_client.scan_iter(redis_keys.CALLBACK_CHAIN.key("in:*"))
    (event,) = [json.loads(item)["event"] for item in redis_client.lrange(chain, 0, -1)]
    assert event["in_reply_to"]["external_id"] == "c-2"


def test_a_replay_of_a_message_written_before_answers_it_and_a_changed_one_conflicts(client, redis_client):
    body = {"recipient_phone": PHONE, "message_body": "Olá", "external_id": "c-1"}
    first = client.post("/v1/messages/send", json=body, headers=auth())
    assert first.status_code in (200, 201, 202), first.json
    as_written_before(redis_client, first.json["message_id"])
    again = client.post("/v1/messages/send", json=body, headers=auth())
    assert again.json["message_id"] == first.json["message_id"], again.json
    changed = client.post("/v1/messages/send", json={**body, "message_body": "Oi"}, headers=auth())
    assert changed.status_code == 409, changed.json


def test_a_bulk_replay_of_rows_written_before_answers_them_and_a_changed_row_conflicts(client, redis_client):
    rows = [{"recipient_phone": PHONE, "message_body": "Olá", "external_id": f"r-{n}"} for n in range(2)]
    first = client.post("/v1/messages/bulk", json={"messages": rows}, headers=auth())
    assert first.status_code == 200, first.json
    ids = [row["message_id"] for row in first.json["results"]]
    for message_id in ids:
        as_written_before(redis_client, message_id)
    rows[1]["message_body"] = "Oi"
    again = client.post("/v1/messages/bulk", json={"messages": rows}, headers=auth())
    replayed, changed = again.json["results"]
    assert (replayed["message_id"], replayed.get("replayed")) == (ids[0], True), again.json
    assert (changed["code"], changed["message_id"]) == ("idempotency_conflict", ids[1]), again.json


def test_a_message_written_before_that_the_provider_accepted_is_not_retried(services, clock, redis_client):
    message_id = accept(services, "c-1")
    sent(services, message_id, "p-1")
    as_written_before(redis_client, message_id)
    reported(services, "p-1", statuses.FAILED)  # a late report failed it
    assert services.store.get(message_id).status == statuses.FAILED
    assert services.failed.retry(message_id, lambda _: ("queue", "task"), 60) == "already_sent"


def test_a_move_of_a_finished_message_written_before_counts_on_the_day_it_finished(services, clock, redis_client):
    message_id = accept(services, "c-1")
    sent(services, message_id, "p-1")
    as_written_before(redis_client, message_id)
    sent_day = int(clock.now // DAY)
    clock.now += 2 * DAY
    assert services.store.move([Move(message_id, statuses.FAILED, (statuses.SENT,))]) == ["ok"]
    day_counts = redis_client.hgetall(redis_keys.DAY_COUNTS.key(sent_day))
    assert day_counts.get(statuses.FAILED) == "1" and int(day_counts.get(statuses.SENT, 0)) == 0


def test_a_sent_move_that_names_no_provider_id_indexes_the_one_a_record_written_before_holds(services, redis_client):
    message_id = accept(services, "c-1")
    claim = services.store.claim(message_id, take_over_expired=True)
    as_written_before(redis_client, message_id)
    redis_client.hset(redis_keys.MESSAGE.key(message_id), "provider_message_id", "p-1")
    move = Move(message_id, statuses.SENT, (statuses.SENDING,), attempt=claim.attempt)
    assert services.store.move([move]) == ["ok"]
    reported(services, "p-1", statuses.DELIVERED)
    assert services.store.get(message_id).status == statuses.DELIVERED


def test_a_sticky_pools_message_written_before_goes_through_the_member_that_wrote_to_its_contact(
    client, services, redis_client
):
    members = [{"provider": "mock", "sender": sender} for sender in ("a", "b")]
    assert client.put("/v1/pools/loja", json={"members": members, "sticky": True}, headers=operator()).status_code < 300
    claims = []
    for n in range(2):
        body = {"recipient_phone": PHONE, "message_body": "Olá", "external_id": f"c-{n}", "pool": "loja"}
        message_id = client.post("/v1/messages/send", json=body, headers=auth()).json["message_id"]
        if n == 1:
            as_written_before(redis_client, message_id)
        claims.append(services.store.claim(message_id, take_over_expired=True))
        outcome = Outcome(statuses.SENT, provider_message_id=f"p-{n}")
        assert record(services.store, message_id, outcome, claims[-1].attempt) == "ok"
    assert claims[1].outcome == "claimed" and claims[1].sender == claims[0].sender
