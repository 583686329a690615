"""Evolution instances through our API (both faces) against the Evolution fake, over real HTTP."""

import pytest

from tests.conftest import operator
from tests.fakes import evolution


@pytest.fixture
def fake(fake_evolution):
    return fake_evolution


@pytest.fixture
def client(make_app, fake):
    return make_app(
        WHATSAPP_PROVIDER="evolution",
        EVOLUTION_API_URL=fake.url,
        EVOLUTION_API_KEY=evolution.API_KEY,
        EVOLUTION_INSTANCE=evolution.INSTANCE,
    )


def test_create_connect_status_logout_delete(client, fake):
    created = client.post("/v1/instances", json={"instance_name": "loja-2"}, headers=operator())
    assert created.status_code == 201
    assert created.json["qrcode"]["base64"].startswith("data:image/png;base64,")
    assert fake.received[-1].json == {"instanceName": "loja-2", "integration": "WHATSAPP-BAILEYS", "qrcode": True}
    pairing = client.get("/v1/instances/loja-2/connect", query_string={"number": "5564999998888"}, headers=operator())
    assert pairing.json["pairingCode"] == "WZYEH1YY"
    assert client.get("/v1/instances/loja-2/status", headers=operator()).json["instance"]["state"] == "connecting"
    names = [row["name"] for row in client.get("/v1/instances", headers=operator()).json]
    assert names == ["loja-1", "loja-2"]
    assert client.delete(f"/v1/instances/{evolution.INSTANCE}/logout", headers=operator()).status_code == 200
    assert client.delete("/v1/instances/loja-2", headers=operator()).status_code == 200
    assert "loja-2" not in fake.instances


def test_evolutions_errors_are_relayed(client):
    taken = client.post("/v1/instances", json={"instance_name": evolution.INSTANCE}, headers=operator())
    assert taken.status_code == 403 and taken.json["code"] == "evolution_403"
    missing = client.get("/v1/instances/nope/status", headers=operator())
    assert missing.status_code == 404
    assert missing.json["error"] == 'Evolution API: The "nope" instance does not exist'
    bad = client.post("/v1/instances", json={"instance_name": "a b"}, headers=operator())
    assert bad.status_code == 400 and bad.json["field"] == "instance_name"


def test_seed_000_instance_routes(client, fake):
    created = client.post("/api/v1/instances/", json={"instanceName": "loja-3"}, headers=operator())
    assert created.status_code == 201
    assert fake.received[-1].json["integration"] == "WHATSAPP-BAILEYS"  # v2 requires it; the legacy API forgot
    assert client.get("/api/v1/instances/nope/status", headers=operator()).json == {"state": "NOT_FOUND"}
    refused = client.post("/api/v1/instances/", json={"instanceName": "x", "extra": 1}, headers=operator())
    assert refused.status_code == 400 and refused.json["success"] is False
    gone = client.delete("/api/v1/instances/nope", headers=operator())
    assert gone.status_code == 404 and gone.json["success"] is False


def test_instances_need_the_evolution_provider(make_app):
    answer = make_app().get("/v1/instances", headers=operator())
    assert answer.status_code == 400 and answer.json["code"] == "provider_not_enabled"


def test_evolution_down_is_a_502(make_app):
    client = make_app(
        WHATSAPP_PROVIDER="evolution",
        EVOLUTION_API_URL="http://127.0.0.1:9",
        EVOLUTION_API_KEY="k",
        EVOLUTION_INSTANCE="x",
    )
    answer = client.get("/v1/instances", headers=operator())
    assert answer.status_code == 502 and answer.json["code"] == "evolution_unreachable"
