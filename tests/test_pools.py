"""Sender pools end to end: the operator's routes, sending through a pool with real workers, a member paused
mid-campaign, a pool with no member left, mixed providers; what was sent is counted at the providers' fakes.

The choice itself, decision by decision with an injected clock: tests/test_pool_choice.py.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest

from tests.conftest import OTHER_API_KEY, auth, operator, wait_for
from tests.fakes import evolution, meta
from tests.fakes import inbound as inbound_fake
from tests.fakes.receiver import FakeReceiver
from tests.fakes.server import Scripted
from tests.fakes.webhook import SECRET, FakeBridge
from tests.test_callbacks import callback_env


@pytest.fixture
def bridge():
    fake = FakeBridge().start()
    yield fake
    fake.stop()


def bridge_env(bridge, **extra: str) -> dict[str, str]:
    return {
        "WHATSAPP_PROVIDERS": "webhook,mock",
        "WHATSAPP_PROVIDER": "webhook",
        "WEBHOOK_PROVIDER_URL": f"{bridge.url}/hook",
        "WEBHOOK_PROVIDER_SECRET": SECRET,
        **extra,
    }


def put_pool(client, name: str, members: list[tuple[str, str]], **extra):
    body = {"members": [{"provider": p, "sender": s} for p, s in members], **extra}
    return client.put(f"/v1/pools/{name}", json=body, headers=operator())


def bulk(client, pool: str, rows: int, **extra):
    answer = client.post(
        "/v1/messages/bulk",
        headers=auth(),
        json={
            "pool": pool,
            "messages": [
                {"recipient_phone": f"+55649{n:08d}", "external_id": f"{pool}-{n}", "message_body": "Olá"}
                for n in range(rows)
            ],
            **extra,
        },
    )
    assert answer.status_code == 200, answer.json
    assert answer.json["accepted"] == rows
    return answer.json["batch_id"]


def sent_by(bridge) -> Counter[str]:
    return Counter(received.json["sender"] for received in bridge.received if received.json)


def test_operators_define_pools_and_every_key_reads_them(client):
    created = put_pool(client, "loja", [("mock", "a"), ("mock", "b")], sticky=True)
    assert created.status_code == 201, created.json
    assert created.json["sticky"] is True and [m["sender"] for m in created.json["members"]] == ["a", "b"]
    assert put_pool(client, "loja", [("mock", "a")]).status_code == 200  # replaced
    view = client.get("/v1/pools/loja", headers=auth(OTHER_API_KEY)).json
    assert view["members"][0] | {"state": "active", "weight": 1, "sent": 0} == view["members"][0]
    assert [pool["name"] for pool in client.get("/v1/pools", headers=auth()).json["pools"]] == ["loja"]
    refused = client.put("/v1/pools/loja", json={"members": [{"provider": "mock", "sender": "a"}]}, headers=auth())
    assert refused.status_code == 403 and refused.json["code"] == "operator_only"
    assert client.delete("/v1/pools/loja", headers=auth()).status_code == 403
    assert client.delete("/v1/pools/loja", headers=operator()).json == {"deleted": "loja"}
    assert client.get("/v1/pools/loja", headers=auth()).status_code == 404


@pytest.mark.parametrize(
    ("members", "path", "code"),
    [
        ([], "members", "invalid_field"),
        ([{"provider": "nope", "sender": "a"}], "members.0.provider", "unknown_provider"),
        ([{"provider": "mock", "sender": "a\n"}], "members.0.sender", "invalid_field"),
        ([{"provider": "mock", "sender": "a"}, {"provider": "mock", "sender": "a"}], "members.1", "duplicate_member"),
        ([{"provider": "mock", "sender": "a", "weight": 0}], "members.0.weight", "invalid_field"),
    ],
)
def test_a_bad_pool_is_a_400_naming_the_field(client, members, path, code):
    answer = client.put("/v1/pools/loja", json={"members": members}, headers=operator())
    assert answer.status_code == 400, answer.json
    assert (answer.json["field"], answer.json["code"]) == ("members", code)
    assert answer.json["error"].startswith(path)  # the field is the body's; its text says where inside


def test_a_pool_name_is_a_plain_path_segment(client):
    answer = client.put("/v1/pools/a..b", json={"members": [{"provider": "mock", "sender": "a"}]}, headers=operator())
    assert answer.status_code == 400 and answer.json["field"] == "name"


def test_a_send_names_a_pool_or_a_sender_not_both_and_an_existing_pool(client):
    put_pool(client, "loja", [("mock", "a")])
    body = {"recipient_phone": "+5564999998888", "message_body": "Olá", "external_id": "p-1"}
    both = client.post("/v1/messages/send", json={**body, "pool": "loja", "sender": "a"}, headers=auth())
    assert both.status_code == 400 and (both.json["code"], both.json["field"]) == ("sender_and_pool", "pool")
    unknown = client.post("/v1/messages/send", json={**body, "pool": "nenhum"}, headers=auth())
    assert unknown.status_code == 400 and (unknown.json["code"], unknown.json["field"]) == ("unknown_pool", "pool")
    ok = client.post("/v1/messages/send", json={**body, "pool": "loja"}, headers=auth())
    assert ok.status_code == 200, ok.json
    message = client.get(f"/v1/messages/{ok.json['message_id']}", headers=auth()).json
    assert (message["pool"], message["provider"]) == ("loja", "")  # its member is chosen at its claim


CHIPS = [("webhook", "chip-1"), ("webhook", "chip-2"), ("webhook", "chip-3")]
PACED = {"SENDER_RATE_WEBHOOK": "5", "SENDER_BURST_WEBHOOK": "1", "WORKER_CONCURRENCY": "8"}


def completed(client, batch_id: str, timeout: float = 60) -> None:
    wait_for(
        lambda: client.get(f"/v1/batches/{batch_id}", headers=auth()).json["state"] == "completed",
        timeout,
        what="the campaign to finish",
    )


def test_a_pool_of_three_at_5_a_second_sends_300_messages_at_15_a_second(make_app, start_worker, bridge):
    env = bridge_env(bridge, **PACED)
    client = make_app(**env)
    start_worker(**env)
    assert put_pool(client, "chips", CHIPS).status_code == 201
    completed(client, bulk(client, "chips", 300))
    assert sum(bridge.accepted.values()) == 300 and set(bridge.accepted.values()) == {1}  # none lost or doubled
    times = sorted(received.at for received in bridge.received)
    rate = (len(times) - 3) / (times[-1] - times[2])  # the first three went at once, one on each member's burst
    assert 15 * 0.95 <= rate <= 15 * 1.05, rate
    assert sent_by(bridge) == {"chip-1": 100, "chip-2": 100, "chip-3": 100}


def test_a_member_paused_a_third_of_the_way_through_sends_nothing_more(make_app, start_worker, bridge):
    env = bridge_env(bridge, **PACED)
    client = make_app(**env)
    start_worker(**env)
    assert put_pool(client, "chips", CHIPS).status_code == 201
    batch_id = bulk(client, "chips", 300)

    wait_for(lambda: len(bridge.received) >= 100, 30, what="a third of the campaign")
    paused_at = datetime.now().timestamp()
    assert client.post("/v1/senders/webhook/chip-1/pause", headers=operator()).status_code == 200
    completed(client, batch_id)

    assert sum(bridge.accepted.values()) == 300 and set(bridge.accepted.values()) == {1}  # none lost or doubled
    late = [r for r in bridge.received if r.json["sender"] == "chip-1" and r.at > paused_at + 1.0]
    assert not late  # a call in flight at the pause may end just after it; nothing is sent by it after that
    after = [r.json["sender"] for r in bridge.received if r.at > paused_at + 1.0]
    assert set(after) == {"chip-2", "chip-3"}
    rate_after = (len(after) - 1) / (max(r.at for r in bridge.received) - (paused_at + 1.0))
    assert 10 * 0.85 <= rate_after <= 10 * 1.1, rate_after  # the two left, at 5/s each
    pool = client.get("/v1/pools/chips", headers=auth()).json
    assert sum(member["sent"] for member in pool["members"]) == 300
    assert {m["sender"]: m["state"] for m in pool["members"]}["chip-1"] == "paused"
    metrics = client.get("/metrics", headers=operator()).get_data(as_text=True)
    assert 'dispatcher_pool_member_active{pool="chips",provider="webhook",sender="chip-1"} 0.0' in metrics
    sent = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("dispatcher_pool_member_sent_total")
    )
    assert sent == 300


def test_sticky_recipients_keep_the_member_that_wrote_to_them(make_app, start_worker, bridge):
    env = bridge_env(bridge)
    client = make_app(**env)
    start_worker(**env)
    put_pool(client, "chips", [("webhook", "chip-1"), ("webhook", "chip-2"), ("webhook", "chip-3")], sticky=True)
    contacts = [f"+55649{n:08d}" for n in range(6)]

    def campaign(name: str) -> None:
        rows = [
            {"recipient_phone": phone, "external_id": f"{name}-{phone}", "message_body": "Olá"} for phone in contacts
        ]
        batch_id = client.post("/v1/messages/bulk", json={"pool": "chips", "messages": rows}, headers=auth()).json[
            "batch_id"
        ]
        wait_for(
            lambda: client.get(f"/v1/batches/{batch_id}", headers=auth()).json["state"] == "completed", 20, what=name
        )

    campaign("first")
    first = {r.json["phone"]: r.json["sender"] for r in bridge.received}
    assert len(set(first.values())) == 3  # the first campaign spread over the three
    bridge.received.clear()
    campaign("second")
    campaign("third")
    for received in bridge.received:
        assert received.json["sender"] == first[received.json["phone"]]


def test_a_pool_with_no_member_left_holds_its_messages_and_sends_them_on_resume(make_app, start_worker, bridge):
    env = bridge_env(bridge)
    client = make_app(**env)
    start_worker(**env)
    put_pool(client, "chips", [("webhook", "chip-1"), ("webhook", "chip-2")])
    for member in ("chip-1", "chip-2"):
        client.post(f"/v1/senders/webhook/{member}/pause", headers=operator())
    batch_id = bulk(client, "chips", 20)
    wait_for(lambda: client.get("/v1/pools/chips", headers=auth()).json["held"] == 20, 20, what="the pool to hold")
    assert client.get("/v1/queue/status", headers=operator()).json["held_by_pools"] == 20
    assert not bridge.received
    assert client.get(f"/v1/batches/{batch_id}", headers=auth()).json["counts"].get("failed", 0) == 0
    client.post("/v1/senders/webhook/chip-2/resume", headers=operator())
    wait_for(lambda: bridge.accepted_so_far().total() == 20, 20, what="the held messages to go")
    assert sent_by(bridge) == {"chip-2": 20}


def test_a_pool_may_mix_providers_and_its_events_say_which_member_sent(
    make_app, start_worker, start_callbacks_worker, bridge
):
    receiver = FakeReceiver().start()
    try:
        env = bridge_env(bridge, **callback_env())
        client = make_app(**env)
        start_worker(**env)
        start_callbacks_worker(**env)
        put_pool(client, "misto", [("webhook", "chip-1"), ("mock", "mock-1")])
        batch_id = bulk(client, "misto", 20, callback_url=receiver.hook_url)
        wait_for(
            lambda: client.get(f"/v1/batches/{batch_id}", headers=auth()).json["state"] == "completed",
            30,
            what="the batch",
        )
        assert sum(bridge.accepted.values()) == 10  # the weights (1 and 1) share what is free at once
        wait_for(lambda: len([e for e in receiver.events() if e["type"] == "message.sent"]) == 20, 20, what="events")
        members = Counter(
            (e["provider"], e["sender"], e["pool"]) for e in receiver.events() if e["type"] == "message.sent"
        )
        assert members == {("webhook", "chip-1", "misto"): 10, ("mock", "mock-1", "misto"): 10}
    finally:
        receiver.stop()


def test_an_evolution_instance_that_disconnects_fails_over_and_comes_back(make_app, start_worker, fake_evolution):
    fake_evolution.instances["loja-2"] = "open"
    env = {
        "WHATSAPP_PROVIDERS": "evolution,mock",
        "WHATSAPP_PROVIDER": "evolution",
        "EVOLUTION_API_URL": fake_evolution.url,
        "EVOLUTION_API_KEY": evolution.API_KEY,
        "EVOLUTION_INSTANCE": "loja-1,loja-2",
        "EVOLUTION_WEBHOOK_SECRET": "evolution-shared-secret",
        "WORKER_API_CALL_DELAY": "100",  # 10/s per instance, ±50 %
    }
    client = make_app(**env)
    start_worker(**env)
    put_pool(client, "chips", [("evolution", "loja-1"), ("evolution", "loja-2")])
    batch_id = bulk(client, "chips", 60)

    def sent_from(instance: str) -> list[float]:
        return [r.at for r in fake_evolution.received if r.path == f"/message/sendText/{instance}"]

    wait_for(lambda: len(sent_from("loja-1")) >= 5, 20, what="loja-1 to send")
    secret = {"X-Webhook-Secret": "evolution-shared-secret"}
    closed = client.post(
        "/v1/webhooks/evolution", json=inbound_fake.evolution_connection("loja-1", "close", 428), headers=secret
    )
    assert closed.json["outcomes"] == {"paused": 1}
    closed_at = datetime.now().timestamp()
    member = client.get("/v1/senders/evolution/loja-1", headers=auth()).json
    assert member["state"] == "paused" and member["paused_reason"].startswith("disconnected")
    wait_for(lambda: len(sent_from("loja-2")) >= 20, 20, what="loja-2 to take over")
    assert not [t for t in sent_from("loja-1") if t > closed_at + 1.0]  # a call in flight may end just after
    opened = client.post(
        "/v1/webhooks/evolution", json=inbound_fake.evolution_connection("loja-1", "open"), headers=secret
    )
    assert opened.json["outcomes"] == {"resumed": 1}
    wait_for(
        lambda: client.get(f"/v1/batches/{batch_id}", headers=auth()).json["state"] == "completed", 30, what="batch"
    )
    assert len(sent_from("loja-1")) + len(sent_from("loja-2")) == 60
    failovers = [
        entry
        for message in client.get(f"/v1/batches/{batch_id}/messages", query_string={"limit": 100}, headers=auth()).json[
            "messages"
        ]
        for entry in message["history"]
        if str(entry.get("detail", "")).startswith("failover from evolution/loja-1")
    ]
    assert failovers  # each move is in the message's history


def test_a_locked_meta_number_is_paused_and_its_message_sent_by_another(make_app, start_worker, fake_meta):
    fake_meta.phone_number_ids.add("106540352242923")
    env = {
        "WHATSAPP_PROVIDERS": "meta,mock",
        "WHATSAPP_PROVIDER": "meta",
        "META_API_BASE_URL": fake_meta.url,
        "META_ACCESS_TOKEN": meta.ACCESS_TOKEN,
        "META_PHONE_NUMBER_ID": f"{meta.PHONE_NUMBER_ID},106540352242923",
        "META_API_VERSION": meta.VERSION,
    }
    client = make_app(**env)
    start_worker(**env)
    put_pool(client, "oficial", [("meta", meta.PHONE_NUMBER_ID), ("meta", "106540352242923")])
    fake_meta.script(Scripted(400, meta.error_body(131031, "(#131031) Business account has been locked")))
    body = {"recipient_phone": "+5564999998888", "message_body": "Olá", "external_id": "locked-1", "pool": "oficial"}
    message_id = client.post("/v1/messages/send", json=body, headers=auth()).json["message_id"]
    wait_for(lambda: client.get(f"/v1/messages/{message_id}", headers=auth()).json["status"] == "sent", 20, what="sent")
    message = client.get(f"/v1/messages/{message_id}", headers=auth()).json
    assert message["sender"] == "106540352242923"
    locked = client.get(f"/v1/senders/meta/{meta.PHONE_NUMBER_ID}", headers=auth()).json
    assert locked["state"] == "paused" and "131031" in locked["paused_reason"]
    assert [r.path.split("/")[2] for r in fake_meta.received] == [meta.PHONE_NUMBER_ID, "106540352242923"]
