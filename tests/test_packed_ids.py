"""The message ids a batch's row list keeps packed, as bytes (lib/packed.lua): what Redis holds, what a reader
gets back, and that a list written before, as text, still reads as it was. Against a real Redis, through the
API. (The day indexes' packed entries: tests/test_day_index.py.)"""

from __future__ import annotations

import time

import pytest
import redis

from dispatcher import redis_keys, statuses
from dispatcher.names import packed_message_id, unpacked_message_id
from dispatcher.store import MessageStore, NewMessage, connect
from tests.conftest import auth

ID = "msg-0c059e25-02d4-8b4d-901c-83b50efef1d2"


@pytest.fixture
def raw_client(redis_url) -> redis.Redis:
    """A client that reads bytes, as Redis holds them (the fixtures' client decodes text)."""
    return redis.Redis.from_url(redis_url)


# 40 characters, `msg-` and dashes, but not exactly a lowercase UUID (a hex parser would read each of them).
NOT_QUITE = [
    ID.replace("0c05", "0C05"),
    ID.replace("msg-0", "msg-+"),
    ID.replace("msg-0", "msg- "),
    ID.replace("msg-0c", "msg-0x"),
    ID.replace("-02d4", "--02d"),
    "msg-r1",
]


def packed(message_id: str) -> bytes:
    """`message_id` packed by hand: its UUID's 16 bytes."""
    return bytes.fromhex(message_id[4:].replace("-", ""))


def test_an_id_of_ours_is_packed_into_16_bytes_and_anything_else_stays_text():
    assert packed_message_id(ID) == packed(ID) and unpacked_message_id(packed(ID)) == ID
    assert unpacked_message_id(ID.encode()) == ID  # written as text before
    for message_id in NOT_QUITE:
        assert packed_message_id(message_id) == message_id
        assert unpacked_message_id(message_id.encode()) == message_id


def bulk(client, rows: int = 3) -> dict:
    body = {
        "messages": [
            {"recipient_phone": f"+55649{n:08d}", "message_body": "Olá", "external_id": f"r-{n}"} for n in range(rows)
        ]
    }
    answer = client.post("/v1/messages/bulk", json=body, headers=auth())
    assert answer.status_code == 200, answer.json
    return answer.json


def listed(client, batch_id: str) -> list[str]:
    answer = client.get(f"/v1/batches/{batch_id}/messages", headers=auth())
    assert answer.status_code == 200, answer.json
    return [message["message_id"] for message in answer.json["messages"]]


def test_a_batchs_row_list_holds_16_bytes_a_row_and_lists_its_ids_in_order(client, raw_client):
    accepted = bulk(client)
    ids = [row["message_id"] for row in accepted["results"]]
    stored = raw_client.lrange(redis_keys.BATCH_MESSAGES.key(accepted["batch_id"]), 0, -1)
    assert stored == [packed(message_id) for message_id in ids]
    assert listed(client, accepted["batch_id"]) == ids


def test_a_row_list_written_as_text_before_is_still_listed_and_canceled(client, redis_client):
    accepted = bulk(client)
    batch_id, ids = accepted["batch_id"], [row["message_id"] for row in accepted["results"]]
    rows = redis_keys.BATCH_MESSAGES.key(batch_id)
    redis_client.delete(rows)
    redis_client.rpush(rows, *ids)  # as the layout before wrote it
    assert listed(client, batch_id) == ids
    assert client.post(f"/v1/batches/{batch_id}/cancel", headers=auth()).status_code == 200
    assert [redis_client.hget(redis_keys.MESSAGE.key(message_id), "status") for message_id in ids] == [
        statuses.CANCELED
    ] * len(ids)


def test_a_bulk_row_whose_id_is_not_exactly_of_our_form_is_refused_before_anything_is_written(redis_url, raw_client):
    """Row ids are message_id_for's; one that is not (a UUID in capitals would pack, then unpack as another id)
    is a bug, stopped before the slice reaches Redis."""
    store = MessageStore(connect(redis_url), retention_seconds=3600, queued_grace_seconds=300, lease_seconds=2)
    for message_id in NOT_QUITE:
        rows = [
            NewMessage(ID, "r0", "+5564999998888", "Olá", "1"),
            NewMessage(message_id, "r1", "+5564999998888", "Olá", "1"),
        ]
        with pytest.raises(ValueError, match="not one of ours"):
            store.create_batch("batch-t", "k", iter(rows), time.time(), {"provider": "mock"})
        assert not raw_client.exists(redis_keys.BATCH_MESSAGES.key("batch-t"), redis_keys.MESSAGE.key(ID))
