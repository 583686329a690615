"""A bulk request or a resume cut at any step leaves nothing stranded.

Accepting a batch writes its rows (pipelined slices) and then starts it; resuming moves its state and
publishes its chunks. The proxy in front of Redis cuts the connection at every command in turn, as a
killed web process or a dropped network would; after each cut the client replays its request (as
reach-town does on a 503) and the reconciler has its pass. Every row must then belong to exactly one
message, in a batch that runs with chunks covering each of its rows once.
"""

from __future__ import annotations

import json
import time
from base64 import b64decode
from urllib.parse import urlsplit

import pytest

from dispatcher.messages import MessageService
from dispatcher.store import ACCEPT_GRACE_SECONDS, MessageStore, connect
from tasks.envelope import chunk_task_for, send_task_for
from tasks.reconcile import republish_overdue
from tests.conftest import auth, wait_for
from tests.fakes.redis_proxy import RedisProxy

QUEUE = "message-dispatch-queue"
ROWS = 1200  # two create_rows slices and three chunks (BULK_CHUNK_SIZE=500)


@pytest.fixture
def proxy(redis_url):
    parts = urlsplit(redis_url)
    proxy = RedisProxy(parts.port)
    proxy.url = f"redis://127.0.0.1:{proxy.port}{parts.path}"
    yield proxy
    proxy.close()


def bulk(rows: int = ROWS) -> dict:
    return {
        "template": "Oi {{name}}",
        "messages": [
            {"recipient_phone": f"+55649{i:08d}", "external_id": f"row-{i}", "variables": {"name": str(i)}}
            for i in range(rows)
        ],
    }


def reconcile_later(redis_url, seconds: float) -> None:
    """The reconciler's pass as a worker would make it `seconds` from now (its own connection, no proxy)."""
    store = MessageStore(connect(redis_url), 3600, 300, 60, clock=lambda: time.time() + seconds)
    republish_overdue(store, MessageService(store, send_task_for(QUEUE), chunk_task_for(QUEUE), 500))


def chunk_ranges(redis_client) -> dict[str, list[tuple[int, int]]]:
    """The chunk tasks waiting in the queue, by batch."""
    ranges: dict[str, list[tuple[int, int]]] = {}
    for raw in redis_client.lrange(QUEUE, 0, -1):
        args = json.loads(b64decode(json.loads(raw)["body"]))[0]
        if len(args) == 3:
            ranges.setdefault(args[0], []).append((args[1], args[2]))
    return ranges


def assert_every_row_on_its_way_once(redis_client, rows: int = ROWS) -> None:
    records = [key for key in redis_client.keys("dispatch:msg:*") if key.count(":") == 2]
    external_ids = [redis_client.hget(key, "ext") for key in records]
    assert len(records) == len(set(external_ids)) == rows
    assert redis_client.hget("dispatch:counts", "queued") == str(rows)
    ranges = chunk_ranges(redis_client)
    total = 0
    for batch_key in redis_client.keys("dispatch:batch:*"):
        if batch_key.count(":") != 2:
            continue
        batch = redis_client.hgetall(batch_key)
        batch_id = batch["batch_id"]
        assert batch["state"] == "running", batch
        covered = sorted(row for start, stop in ranges.get(batch_id, []) for row in range(start, stop))
        assert covered == list(range(int(batch["total"]))), (batch_id, batch["total"])
        total += int(batch["total"])
    assert total == rows
    assert not [m for m in redis_client.zrange("dispatch:pending", 0, -1) if m.startswith("accept:")]


def test_a_bulk_request_cut_at_any_command_then_replayed_leaves_every_row_on_its_way_once(
    make_app, proxy, redis_url, redis_client
):
    client = make_app(REDIS_URL=proxy.url, BULK_CHUNK_SIZE="500")
    assert client.post("/v1/messages/bulk", json=bulk(2), headers=auth()).status_code == 200  # scripts loaded
    redis_client.flushdb()
    proxy.cut_at(10**6)
    assert client.post("/v1/messages/bulk", json=bulk(), headers=auth()).status_code == 200
    commands = proxy.commands
    assert commands >= 3
    for cut in range(commands):
        redis_client.flushdb()
        proxy.cut_at(cut)
        first = client.post("/v1/messages/bulk", json=bulk(), headers=auth())
        assert first.status_code in (200, 503), (cut, first.json)
        proxy.heal()
        replay = client.post("/v1/messages/bulk", json=bulk(), headers=auth())
        assert replay.status_code == 200, (cut, replay.json)
        assert replay.json["accepted"] == ROWS
        reconcile_later(redis_url, ACCEPT_GRACE_SECONDS + 1)
        assert_every_row_on_its_way_once(redis_client)


def test_a_replayed_bulk_request_names_the_batch_its_rows_belong_to(client):
    first = client.post("/v1/messages/bulk", json=bulk(3), headers=auth()).json
    replay = client.post("/v1/messages/bulk", json=bulk(3), headers=auth()).json
    assert replay["batch_id"] == first["batch_id"] is not None
    assert all(row["replayed"] for row in replay["results"])


def test_a_resume_cut_at_any_command_leaves_the_batch_paused_or_running_with_its_chunks(make_app, proxy, redis_client):
    client = make_app(REDIS_URL=proxy.url, BULK_CHUNK_SIZE="500")
    for cut in range(6):
        redis_client.flushdb()
        batch_id = client.post("/v1/messages/bulk", json=bulk(), headers=auth()).json["batch_id"]
        assert client.post(f"/v1/batches/{batch_id}/pause", headers=auth()).status_code == 200
        redis_client.delete(QUEUE)  # the chunks ran and saw the pause: they ended and forgot themselves
        redis_client.zremrangebyscore("dispatch:pending", "-inf", "+inf")
        proxy.cut_at(cut)
        answer = client.post(f"/v1/batches/{batch_id}/resume", headers=auth())
        proxy.heal()
        state = redis_client.hget(f"dispatch:batch:{batch_id}", "state")
        if state == "paused":
            assert answer.status_code == 503
            answer = client.post(f"/v1/batches/{batch_id}/resume", headers=auth())
        assert answer.status_code in (200, 503)
        assert redis_client.hget(f"dispatch:batch:{batch_id}", "state") == "running", cut
        assert sorted(chunk_ranges(redis_client)[batch_id]) == [(0, 500), (500, 1000), (1000, 1200)], cut


def test_a_batch_its_request_left_accepting_is_sent_whole_by_a_worker(
    make_app, proxy, redis_url, redis_client, start_worker
):
    """End to end: the request dies after writing its rows (the cut falls right after the slices), the
    client's replay answers 200, and a real worker's reconciler starts the batch: every row sent once."""
    client = make_app(REDIS_URL=proxy.url, BULK_CHUNK_SIZE="500")
    client.post("/v1/messages/bulk", json=bulk(2), headers=auth())
    redis_client.flushdb()
    proxy.cut_at(2)  # both create_rows slices, then nothing: no start
    assert client.post("/v1/messages/bulk", json=bulk(), headers=auth()).status_code == 503
    proxy.heal()
    batches = [key for key in redis_client.keys("dispatch:batch:*") if key.count(":") == 2]
    assert [redis_client.hget(key, "state") for key in batches] == ["accepting"]
    replay = client.post("/v1/messages/bulk", json=bulk(), headers=auth()).json
    assert replay["batch_id"] and all(row.get("replayed") for row in replay["results"])
    start_worker()
    wait_for(
        lambda: sum(int(redis_client.hget(k, "sent") or 0) for k in redis_client.keys("dispatch:counts:*")) == ROWS,
        ACCEPT_GRACE_SECONDS + 20,
        what="every row sent",
    )
    batch = redis_client.hgetall(f"dispatch:batch:{replay['batch_id']}")
    assert batch["state"] == "completed" and batch["total"] == str(ROWS)
    attempts = [
        redis_client.hget(key, "attempts")
        for key in redis_client.keys("dispatch:msg:*")
        if key.count(":") == 2  # a record, not its log
    ]
    assert attempts == ["1"] * ROWS


def test_cancel_walks_a_large_batch_a_slice_at_a_time_and_can_be_called_again(client, redis_client):
    batch_id = client.post("/v1/messages/bulk", json=bulk(2500), headers=auth()).json["batch_id"]
    first = client.post(f"/v1/batches/{batch_id}/cancel", headers=auth())
    assert first.status_code == 200 and first.json["canceled_now"] == 2500
    again = client.post(f"/v1/batches/{batch_id}/cancel", headers=auth())
    assert again.status_code == 200 and again.json["canceled_now"] == 0
