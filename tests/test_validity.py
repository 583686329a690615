"""A message's validity: `valid_for` or `expires_at` (default MESSAGE_VALIDITY_SECONDS). A message still unsent
by then becomes `expired`, a final status, and is never sent late, whatever held it: a paused sender or batch, a
schedule, a retry's backoff, a task that reached its worker too late.

Through real workers and a real Redis against a fake provider over HTTP (the webhook bridge, which records
every request it gets), with callbacks to a real receiver that checks each event against its published schema;
and at the store's level, with a clock moved by hand."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from dispatcher import statuses
from dispatcher.messages import MessageService, Route
from dispatcher.names import message_id_for, new_batch_id
from dispatcher.pools import Member, Pool, PoolRegistry
from dispatcher.provider_setup import ProviderCatalog
from dispatcher.senders import SenderRegistry
from dispatcher.settings import SettingsError, load_settings
from dispatcher.store import MessageStore, NewMessage, connect
from dispatcher.times import iso
from tasks.delivery import Outcome, record
from tests.conftest import auth, operator, wait_for
from tests.fakes import webhook
from tests.test_callbacks import callback_env
from tests.test_metrics import sample

PHONE = "+5564999998888"
DAY = 86400


def later(seconds: float) -> str:
    """An ISO-8601 time `seconds` from now (before now when negative), with its time zone."""
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def send(client, external_id: str, **extra) -> str:
    body = {"recipient_phone": PHONE, "message_body": "Oi", "external_id": external_id, **extra}
    answer = client.post("/v1/messages/send", json=body, headers=auth())
    assert answer.status_code == 200, answer.json
    return answer.json["message_id"]


def message(client, message_id: str) -> dict:
    return client.get(f"/v1/messages/{message_id}", headers=auth()).json


def reaches(client, message_id: str, status: str, timeout: float = 15) -> dict:
    return wait_for(
        lambda: (m := message(client, message_id))["status"] == status and m, timeout, what=f"{message_id} {status}"
    )


def sent_ids(bridge: webhook.FakeBridge) -> list[str]:
    """The external_id of every request the provider got."""
    return [received.json["external_id"] for received in bridge.received]


# --- at the store, with a clock moved by hand ---------------------------------------------------------------


@pytest.fixture
def store(redis_url, redis_client, clock):
    return MessageStore(
        connect(redis_url), retention_seconds=DAY, queued_grace_seconds=300, lease_seconds=5, clock=clock
    )


@pytest.fixture
def service(store):
    return MessageService(store, lambda i: ("q", f"task:{i}"), lambda b, s, e: ("q", f"chunk:{b}:{s}:{e}"), 10)


def test_a_message_claimed_at_its_expiry_expires_and_is_not_sent(store, service, clock, redis_client):
    expires_at = clock.now + 2
    message_id = service.accept("k", PHONE, "hi", "ext-1", Route("mock"), expires_at=expires_at).message_id
    still_valid = service.accept("k", PHONE, "hi", "ext-2", Route("mock"), expires_at=expires_at + 0.001).message_id
    assert redis_client.zscore("dispatch:expiring", message_id) == expires_at
    clock.now = expires_at  # valid until then, not at then
    claim = store.claim(message_id, take_over_expired=True)
    assert claim.outcome == statuses.EXPIRED and not claim.claimed
    assert store.claim(still_valid, take_over_expired=True).claimed
    expired = store.get(message_id)
    assert expired.status == statuses.EXPIRED and expired.attempts == 0
    reason = f"valid until {iso(expires_at)}"
    assert expired.history[-1] == {"status": "expired", "at": iso(clock.now), "reason": reason}
    assert store.counts() == {"queued": 0, "sending": 1, "expired": 1}
    assert redis_client.zscore("dispatch:expiring", message_id) is None
    assert store.claim(message_id, take_over_expired=True).outcome == statuses.EXPIRED  # final: it stays so


@pytest.mark.parametrize(
    ("moment", "written"),
    [
        (1835481599.999, "2028-02-29T23:59:59.999Z"),
        (4107542400.5, "2100-03-01T00:00:00.500Z"),
        (13574608245.25, "2400-02-29T12:30:45.250Z"),
        (1800000000.0405, "2027-01-15T08:00:00.040Z"),
        (1800000000.9999996, "2027-01-15T08:00:01.000Z"),
    ],
)
def test_the_history_says_until_when_it_was_valid_as_the_api_writes_times(store, service, clock, moment, written):
    clock.now = moment - 1
    message_id = service.accept("k", PHONE, "hi", "ext-1", Route("mock"), expires_at=moment).message_id
    clock.now = moment
    assert store.claim(message_id, take_over_expired=True).outcome == statuses.EXPIRED
    assert iso(moment) == written
    assert store.get(message_id).history[-1]["reason"] == f"valid until {written}"


def test_a_batch_chunk_expires_its_rows_past_their_validity_and_the_batch_completes(store, service, clock):
    rows = [NewMessage(message_id_for("k", f"e-{n}"), f"e-{n}", PHONE, "hi", "f") for n in range(3)]
    batch_id, _ = service.accept_batch("k", rows, Route("mock"), expires_at=clock.now + 5)
    clock.now += 5
    state, claims = store.claim_group(batch_id, [row.message_id for row in rows])
    assert (state, claims) == ("running", [])
    batch = store.batch(batch_id)
    assert batch["count_expired"] == "3" and batch["state"] == "completed"


def test_the_sweep_expires_what_still_waits_wherever_and_drops_the_rest(store, service, clock, redis_client):
    until = clock.now + 10

    def accept(external_id: str, **extra) -> str:
        return service.accept("k", PHONE, "hi", external_id, Route("mock"), **extra).message_id

    queued = accept("queued", expires_at=until)
    scheduled = accept("scheduled", send_at=clock.now + 5, expires_at=until)
    retrying, sent = accept("retrying", expires_at=until), accept("sent", expires_at=until)
    for message_id, outcome in ((retrying, Outcome(statuses.RETRYING, retry_in=60)), (sent, Outcome(statuses.SENT))):
        record(store, message_id, outcome, store.claim(message_id, take_over_expired=True).attempt)
    later_one = accept("later", expires_at=until + 1)
    clock.now = until
    assert store.expire_due() == (3, 4)  # the sent one is only taken off the index
    assert [m.status for m in store.get_many([queued, scheduled, retrying, sent, later_one])] == [
        "expired",
        "expired",
        "expired",
        "sent",
        "queued",
    ]
    assert redis_client.zscore("dispatch:scheduled", scheduled) is None
    assert redis_client.zscore("dispatch:due", retrying) is None
    assert redis_client.zrange("dispatch:expiring", 0, -1) == [later_one]
    assert redis_client.zscore("dispatch:pending", retrying) is None  # the reconciler forgets it
    assert store.expire_due() == (0, 0)


def test_an_expired_message_leaves_what_a_paused_sender_and_a_pool_hold(store, service, clock, base_env):
    senders = SenderRegistry(store.redis, {})
    pools = PoolRegistry(store.redis, senders, ProviderCatalog(load_settings(base_env)))
    pools.save(Pool("loja", (Member("mock", "b", 1),), False))
    senders.pause("mock", "a", "by hand")
    senders.pause("mock", "b", "by hand")
    by_sender = service.accept("k", PHONE, "hi", "e-1", Route("mock", "a"), expires_at=clock.now + 1).message_id
    by_pool = service.accept("k", PHONE, "hi", "e-2", Route("", pool="loja"), expires_at=clock.now + 1).message_id
    outcomes = [store.claim(message_id, take_over_expired=True).outcome for message_id in (by_sender, by_pool)]
    assert outcomes == ["sender_paused", "pool_held"]
    assert (store.redis.scard("dispatch:sender:mock:a:held"), pools.held()) == (1, 1)
    clock.now += 1
    assert store.expire_due() == (2, 2)
    assert (store.redis.scard("dispatch:sender:mock:a:held"), pools.held()) == (0, 0)  # what they hold still waits
    assert senders.resume("mock", "a")[1] == 0


def test_rows_of_a_batch_still_being_written_expire_once_it_runs(store, service, clock):
    """Expired while its request still writes its rows, a row could finish the batch before its total is counted,
    and the batch would never complete: the sweep waits for it to start."""
    batch_id = new_batch_id()
    rows = [NewMessage(message_id_for("k", f"e-{n}"), f"e-{n}", PHONE, "hi", "f") for n in range(2)]
    store.create_batch(batch_id, "k", rows, clock.now, {"provider": "mock"}, expires_at=clock.now + 1)
    clock.now += 1
    assert store.expire_due() == (0, 2)
    assert store.statuses_of([row.message_id for row in rows]) == ["queued", "queued"]
    assert service.start_accepted(batch_id) == "ok"
    clock.now += 1
    assert store.expire_due() == (2, 2)
    assert store.batch(batch_id)["state"] == "completed"


# --- accepting: the fields, their errors, the default -------------------------------------------------------
# (each case's times are made when it runs: made at collection, they could be past by then)


@pytest.mark.parametrize("route", ["/v1/messages/send", "/v1/messages/bulk"])
@pytest.mark.parametrize(
    ("fields", "field", "text"),
    [
        (lambda: {"valid_for": 60, "expires_at": later(60)}, "expires_at", "valid_for or expires_at, not both"),
        (lambda: {"send_at": later(3600), "expires_at": later(1800)}, "expires_at", "after send_at"),
        (lambda: {"send_at": (at := later(3600)), "expires_at": at}, "expires_at", "after send_at"),
        (lambda: {"expires_at": later(-1)}, "expires_at", "in the future"),
        (lambda: {"expires_at": later(31 * DAY)}, "expires_at", "30 days"),
        (lambda: {"expires_at": "2026-12-01T09:00:00"}, "expires_at", "time zone"),
        (lambda: {"expires_at": "tomorrow"}, "expires_at", "ISO-8601"),
        (lambda: {"valid_for": 31 * DAY}, "valid_for", "30 days"),
        (lambda: {"valid_for": 10**400}, "valid_for", "at most 2592000 seconds"),
        (lambda: {"valid_for": 0}, "valid_for", "at least 1"),
        (lambda: {"valid_for": "60"}, "valid_for", "whole number"),
        (lambda: {"valid_for": 1.5}, "valid_for", "whole number"),
    ],
)
def test_a_bad_validity_is_refused_naming_its_field(client, redis_client, route, fields, field, text):
    row = {"recipient_phone": PHONE, "message_body": "Oi", "external_id": "v-1"}
    body = {**row, **fields()} if route.endswith("send") else {"messages": [row], **fields()}
    answer = client.post(route, json=body, headers=auth())
    assert answer.status_code == 400, answer.json
    assert answer.json["field"] == field and answer.json["code"] == "invalid_field"
    assert text in answer.json["error"]
    assert redis_client.keys("dispatch:msg:*") == []


def test_the_message_keeps_its_validity_and_a_replay_is_the_same_message(client, redis_client):
    before = time.time()
    message_id = send(client, "v-1", valid_for=120)
    after = time.time()
    expires_at = timestamp(message(client, message_id)["expires_at"])
    assert before + 120 - 0.001 <= expires_at <= after + 120
    assert redis_client.zscore("dispatch:expiring", message_id) == pytest.approx(expires_at, abs=0.001)
    chosen = later(7200)
    scheduled = send(client, "v-2", send_at=later(600), expires_at=chosen)
    assert message(client, scheduled)["expires_at"] == iso(timestamp(chosen))
    # The validity is not the message's content: a replay with another one is the same message, unchanged.
    replay = client.post(
        "/v1/messages/send",
        json={"recipient_phone": PHONE, "message_body": "Oi", "external_id": "v-1", "valid_for": 5},
        headers=auth(),
    ).json
    assert replay["replayed"] is True and replay["message_id"] == message_id
    assert timestamp(message(client, message_id)["expires_at"]) == expires_at
    assert message(client, send(client, "v-3"))["expires_at"] is None  # no default set: no limit


def test_message_validity_seconds_is_the_default_counted_from_when_the_message_may_go(make_app, redis_client):
    client = make_app(MESSAGE_VALIDITY_SECONDS="600")
    before = time.time()
    now_id = send(client, "d-1")
    send_at = later(3600)
    scheduled = send(client, "d-2", send_at=send_at)
    own = send(client, "d-3", valid_for=60)
    rows = [{"recipient_phone": PHONE, "message_body": "Oi", "external_id": "d-4"}]
    bulk_row = client.post("/v1/messages/bulk", json={"messages": rows}, headers=auth()).json["results"][0]
    legacy = client.post(
        "/api/v1/dispatch/single",
        json={"instanceName": "loja-1", "phone": PHONE, "type": "text", "message": "Oi"},
        headers=auth(),
    ).json["jobId"]
    after = time.time()

    def expires(message_id: str) -> float:
        return timestamp(message(client, message_id)["expires_at"])

    for message_id in (now_id, bulk_row["message_id"], legacy):
        assert before + 600 - 0.001 <= expires(message_id) <= after + 600
    assert expires(scheduled) == pytest.approx(timestamp(send_at) + 600, abs=0.001)
    assert before + 60 - 0.001 <= expires(own) <= after + 60
    assert redis_client.zcard("dispatch:expiring") == 5


@pytest.mark.parametrize("value", ["0", "soon", str(30 * DAY + 1)])
def test_message_validity_seconds_is_checked_at_start(value):
    with pytest.raises(SettingsError, match="MESSAGE_VALIDITY_SECONDS"):
        load_settings({"API_KEY": "a-long-test-api-key-0123", "MESSAGE_VALIDITY_SECONDS": value})
    unset = load_settings({"API_KEY": "a-long-test-api-key-0123", "MESSAGE_VALIDITY_SECONDS": ""})
    assert unset.message_validity_seconds is None


# --- through real workers -----------------------------------------------------------------------------------


@pytest.fixture
def bridge():
    fake = webhook.FakeBridge().start()
    yield fake
    fake.stop()


def provider_env(bridge, **extra: str) -> dict[str, str]:
    return {**webhook.CASE.env(bridge), **callback_env(), "SENDER_AUTO_PAUSE_WINDOW": "0", **extra}


def test_a_message_held_by_a_paused_sender_expires_there_and_is_never_sent(
    make_app, start_worker, start_callbacks_worker, bridge, receiver, redis_client
):
    env = provider_env(bridge)
    client = make_app(**env)
    assert client.post("/v1/senders/webhook/loja-1/pause", headers=operator()).json["state"] == "paused"
    start_worker(**env)
    start_callbacks_worker(**env)
    message_id = send(client, "held-1", sender="loja-1", valid_for=2, callback_url=receiver.hook_url)
    wait_for(
        lambda: redis_client.sismember("dispatch:sender:webhook:loja-1:held", message_id), what="the sender to hold it"
    )
    expired = reaches(client, message_id, "expired")  # by the sweep: the sender is still paused
    assert client.get("/v1/senders/webhook/loja-1", headers=auth()).json["state"] == "paused"
    assert not redis_client.sismember("dispatch:sender:webhook:loja-1:held", message_id)
    assert expired["history"][-1]["reason"] == f"valid until {expired['expires_at']}"
    assert timestamp(expired["history"][-1]["at"]) >= timestamp(expired["expires_at"])
    (event,) = wait_for(lambda: receiver.events("message.expired"), 20, what="the message.expired callback")
    assert (event["message_id"], event["status"], event["error"]) == (message_id, "expired", None)
    legacy = client.get(f"/api/v1/queue/jobs/{message_id}/status", headers=auth()).json
    assert (legacy["state"], legacy["failedReason"]) == ("failed", "expired")

    assert client.post("/v1/senders/webhook/loja-1/resume", headers=operator()).json["released"] == 0
    after = send(client, "held-2", sender="loja-1")
    reaches(client, after, "sent")
    assert sent_ids(bridge) == ["held-2"]
    assert message(client, message_id)["status"] == "expired"


def test_a_paused_batchs_rows_expire_and_the_batch_completes_counting_them(
    make_app, start_worker, start_callbacks_worker, bridge, receiver
):
    env = provider_env(bridge)
    client = make_app(**env)
    rows = [{"recipient_phone": f"+55649{n:08d}", "external_id": f"vb-{n}", "message_body": "Oi"} for n in range(5)]
    body = {"messages": rows, "valid_for": 2, "callback_url": receiver.hook_url}
    batch_id = client.post("/v1/messages/bulk", json=body, headers=auth()).json["batch_id"]
    assert client.post(f"/v1/batches/{batch_id}/pause", headers=auth()).json["state"] == "paused"
    start_worker(**env)
    start_callbacks_worker(**env)
    done = wait_for(
        lambda: (b := client.get(f"/v1/batches/{batch_id}", headers=auth()).json)["state"] == "completed" and b,
        15,
        what="the batch to complete",
    )
    assert done["counts"] == {"expired": 5} and done["progress"] == 1.0
    (completed,) = wait_for(lambda: receiver.events("batch.completed"), 20, what="batch.completed")
    assert completed["counts"] == {"sent": 0, "delivered": 0, "read": 0, "failed": 0, "canceled": 0, "expired": 5}
    wait_for(lambda: len(receiver.events("message.expired")) == 5, 20, what="a message.expired per row")
    metrics = client.get("/metrics", headers=operator()).text
    assert sample(metrics, "dispatcher_messages_total", status="expired", provider="webhook") == 5
    assert sample(metrics, "dispatcher_messages_current", status="expired") == 5
    assert client.get("/v1/queue/status", headers=operator()).json["counts"]["expired"] == 5
    assert client.post(f"/v1/batches/{batch_id}/resume", headers=auth()).status_code == 409
    assert bridge.received == []


def test_a_task_that_reaches_its_worker_after_the_expiry_sends_nothing(make_app, start_worker, bridge, redis_client):
    env = provider_env(bridge)
    client = make_app(**env)
    message_id = send(client, "late-1", valid_for=1)  # no worker yet: its task waits in the queue
    expires_at = timestamp(message(client, message_id)["expires_at"])
    redis_client.zrem("dispatch:expiring", message_id)  # as if no sweep came by first: the claim alone decides
    wait_for(lambda: time.time() > expires_at, 5, what="its validity to pass")
    worker = start_worker(**env)
    worker.wait_for_line("task skipped: message is expired")
    assert message(client, message_id)["status"] == "expired"
    assert bridge.received == []


def test_a_retrying_message_that_passes_its_validity_is_never_retried(make_app, start_worker, bridge, redis_client):
    env = provider_env(bridge, JOB_BACKOFF_DELAY="6000", JOB_BACKOFF_MAX="6000")  # the retry: 3 to 6 s later
    client = make_app(**env)
    bridge.script(webhook.CASE.transient)  # the first attempt fails, worth retrying
    start_worker(**env)
    message_id = send(client, "retry-1", valid_for=2)
    reaches(client, message_id, "retrying")
    retry_at = float(redis_client.hget(f"dispatch:msg:{message_id}", "next_attempt_at"))
    expired = reaches(client, message_id, "expired")
    assert retry_at > timestamp(expired["expires_at"])
    assert redis_client.zscore("dispatch:due", message_id) is None
    wait_for(lambda: time.time() > retry_at, 10, what="the time its retry was due")
    after = send(client, "retry-2")
    reaches(client, after, "sent")
    assert sent_ids(bridge) == ["retry-1", "retry-2"]  # its first attempt only
    assert [entry["status"] for entry in message(client, message_id)["history"]] == [
        "queued",
        "sending",
        "retrying",
        "expired",
    ]
