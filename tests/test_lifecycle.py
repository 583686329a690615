"""The lifecycle table (dispatcher/statuses.py) walked against the scripts: every move it allows is made,
every other one is refused by `move()` itself, for messages and for batches."""

import itertools
import uuid

import pytest
import redis

from dispatcher import statuses
from dispatcher.names import message_id_for
from dispatcher.store import MessageStore, connect


@pytest.fixture
def store(redis_url, redis_client):
    return MessageStore(connect(redis_url), retention_seconds=3600, queued_grace_seconds=300, lease_seconds=5)


def a_message_in(store, status: str) -> str:
    message_id = message_id_for("k", f"lifecycle-{uuid.uuid4()}")
    store.redis.hset(
        store.message_key(message_id),
        mapping={
            "message_id": message_id,
            "account": "k",
            "external_id": f"e-{status}",
            "recipient": "+5564999998888",
            "body": "hi",
            "fingerprint": "f",
            "status": status,
            "attempts": 1,
            "provider": "mock",
            "created_at": "2026-12-01T00:00:00.000Z",
            "updated_at": "2026-12-01T00:00:00.000Z",
        },
    )
    return message_id


@pytest.mark.parametrize(("old", "new"), list(itertools.product(statuses.ALL, statuses.ALL)))
def test_a_move_is_made_exactly_when_the_table_allows_it(store, old, new):
    message_id = a_message_in(store, old)
    if new in statuses.MOVES[old]:
        assert store.advance(message_id, new, (old,)) == "ok"
        assert store.get(message_id).status == new
    else:
        with pytest.raises(redis.ResponseError, match=f"ILLEGAL_MOVE {old} -> {new}"):
            store.advance(message_id, new, (old,))


@pytest.mark.parametrize(("old", "new"), list(itertools.product(statuses.BATCH_MOVES, statuses.BATCH_MOVES)))
def test_the_batch_controls_follow_the_table(store, old, new):
    batch_id = f"batch-{old}-{new}"
    store.redis.hset(store.batch_key(batch_id), mapping={"batch_id": batch_id, "state": old, "total": 0})
    allowed = new in statuses.BATCH_MOVES[old]
    if new == statuses.PAUSED:
        answer = store.set_batch_state(batch_id, new, statuses.batch_sources(new))
        assert (answer == "ok") == allowed
    elif new == statuses.CANCELED:
        assert (store.cancel_batch(batch_id)[0] == "ok") == allowed


def test_the_preamble_is_the_table():
    preamble = statuses.lua_preamble()
    for old, targets in statuses.MOVES.items():
        for new in targets:
            assert f"['{old}>{new}'] = true" in preamble
    assert preamble.count("= true") == sum(map(len, [*statuses.MOVES.values(), *statuses.BATCH_MOVES.values()])) + 9
    assert "local WAITING = {scheduled = true, queued = true, retrying = true}" in preamble
