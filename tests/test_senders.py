"""/v1/senders, and fairness: a slow sender does not slow a fast one on the same queue and workers."""

from tests.conftest import auth, wait_for
from tests.test_pacing import bulk, completed, sending_times


def test_a_senders_own_pace_is_set_and_shown(make_app):
    client = make_app(SENDER_RATE_MOCK="5")
    assert client.get("/v1/senders/mock/loja-1", headers=auth()).json == {
        "provider": "mock",
        "sender": "loja-1",
        "rate_per_second": 5.0,
        "burst": 1,
        "own": False,
        "current_wait_seconds": 0.0,
    }
    changed = client.put("/v1/senders/mock/loja-1", json={"rate_per_second": 0.5}, headers=auth())
    assert changed.status_code == 200
    assert changed.json["rate_per_second"] == 0.5 and changed.json["own"] is True and changed.json["burst"] == 1
    listed = client.get("/v1/senders", headers=auth()).json["senders"]
    assert {"provider": "mock", "sender": "loja-1"}.items() <= listed[0].items()


def test_bad_pace_and_unknown_senders(make_app):
    client = make_app(
        WHATSAPP_PROVIDERS="evolution",
        EVOLUTION_API_URL="http://127.0.0.1:9",
        EVOLUTION_API_KEY="k",
        EVOLUTION_INSTANCE="loja-1",
    )
    assert (
        client.put("/v1/senders/mock/a", json={"rate_per_second": -1}, headers=auth()).json["field"]
        == "rate_per_second"
    )
    assert client.put("/v1/senders/mock/a", json={"burst": 0}, headers=auth()).status_code == 400
    assert client.get("/v1/senders/twilio/a", headers=auth()).status_code == 404
    assert client.get("/v1/senders/evolution/loja-9", headers=auth()).json["code"] == "unknown_sender"
    assert client.get("/v1/senders/evolution/loja-1", headers=auth()).json["rate_per_second"] == 1.0


def test_a_fast_sender_keeps_its_rate_beside_a_slow_one(make_app, start_worker):
    client = make_app()
    client.put("/v1/senders/mock/slow", json={"rate_per_second": 1, "burst": 1}, headers=auth())
    client.put("/v1/senders/mock/fast", json={"rate_per_second": 20, "burst": 1}, headers=auth())
    start_worker(WORKER_CONCURRENCY="2")
    slow = bulk(client, 200, "slow")  # queued first: 200 s of work at 1/s
    fast = bulk(client, 100, "fast")
    completed(client, fast, timeout=30)
    times = sending_times(client, fast)
    achieved = (len(times) - 1) / (times[-1] - times[0])
    assert achieved >= 0.95 * 20
    wait_for(
        lambda: client.get(f"/v1/batches/{slow}", headers=auth()).json["counts"].get("sent", 0) >= 2,
        what="the slow sender to go on at its own pace",
    )
