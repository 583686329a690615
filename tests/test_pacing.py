"""Pacing across real worker processes: one sender's rate holds globally, waiting holds no worker."""

import itertools
from datetime import datetime

from tests.conftest import auth, operator, wait_for


def sending_times(client, batch_id):
    page = client.get(f"/v1/batches/{batch_id}/messages", query_string={"limit": 500}, headers=auth()).json
    return sorted(
        datetime.fromisoformat(entry["at"].replace("Z", "+00:00")).timestamp()
        for message in page["messages"]
        for entry in message["history"]
        if entry["status"] == "sending"
    )


def bulk(client, rows, sender, first=0):
    answer = client.post(
        "/v1/messages/bulk",
        headers=auth(),
        json={
            "sender": sender,
            "messages": [
                {"recipient_phone": f"+55649{n:08d}", "external_id": f"{sender}-{n}", "message_body": "Olá"}
                for n in range(first, first + rows)
            ],
        },
    )
    assert answer.json["accepted"] == rows
    return answer.json["batch_id"]


def completed(client, batch_id, timeout=60):
    return wait_for(
        lambda: client.get(f"/v1/batches/{batch_id}", headers=auth()).json["state"] == "completed",
        timeout,
        what=f"batch {batch_id} to complete",
    )


def test_one_senders_rate_holds_across_two_workers(make_app, start_worker):
    env = {"SENDER_RATE_MOCK": "10", "SENDER_BURST_MOCK": "2"}
    client = make_app(**env)
    start_worker(**env)
    start_worker(**env)
    batch_id = bulk(client, 40, "loja-1")
    completed(client, batch_id)
    times = sending_times(client, batch_id)
    assert len(times) == 40
    assert times[-1] - times[0] >= (40 - 2) / 10 * 0.95  # no faster than 10/s after the burst
    busiest = max(sum(1 for t in times if start <= t < start + 1) for start in times)
    assert busiest <= 10 + 2  # no one-second window above rate + burst


def test_a_slow_sender_does_not_hold_back_a_free_one(make_app, start_worker):
    env = {"SENDER_RATE_MOCK": "2", "SENDER_BURST_MOCK": "1", "WORKER_CONCURRENCY": "2"}
    client = make_app(**env)
    start_worker(**env)
    slow = bulk(client, 20, "slow")  # ten seconds' worth at 2/s
    fast = bulk(client, 1, "fast")
    completed(client, fast, timeout=5)  # not queued behind the slow sender's 20
    assert client.get(f"/v1/batches/{slow}", headers=auth()).json["state"] == "running"
    held = client.get("/v1/queue/status", headers=operator()).json["held_by_pacing"]
    assert held > 0


def test_jitter_makes_the_rhythm_irregular_but_keeps_the_rate(make_app, start_worker):
    env = {"SENDER_RATE_MOCK": "2", "SENDER_BURST_MOCK": "1", "SENDER_JITTER_MOCK": "0.5"}
    client = make_app(**env)
    start_worker(**env)
    bulk(client, 30, "human")
    redis = client.application.extensions["dispatcher"].store.redis
    wait_for(lambda: redis.zcard("dispatch:due") >= 25, what="the slots to be reserved")
    slots = sorted(score for _, score in redis.zrange("dispatch:due", 0, -1, withscores=True))
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert 0.4 <= sum(gaps) / len(gaps) <= 0.6  # 2/s on average
    assert min(gaps) >= 0.25 and max(gaps) <= 0.75  # each gap within ±50 % of 0.5 s
    assert max(gaps) - min(gaps) > 0.1  # and never a constant gap
