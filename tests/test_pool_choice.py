"""How a pool's message is given its member at the claim (lua/lib/pools.lua), with a real Redis and an injected
clock: the soonest slot wins, weights share what is free at once, sticky recipients keep their member, a fallen
member hands back what waited for it, and nothing fails when no member can send.

The same choices through real workers and providers' fakes: tests/test_pools.py.
"""

import pytest

from dispatcher import redis_keys, statuses
from dispatcher.messages import MessageService, Route, new_message
from dispatcher.pools import Member, Pool, PoolRegistry
from dispatcher.provider_setup import ProviderCatalog
from dispatcher.senders import SenderRegistry, sender_id
from dispatcher.settings import load_settings
from dispatcher.store import MessageStore, connect
from tasks.delivery import Outcome, note_recorded, record


@pytest.fixture
def store(redis_url, redis_client, clock):
    return MessageStore(connect(redis_url), 86400, 300, 5, sender_limits={"mock": (0.0, 1, 0.0)}, clock=clock)


@pytest.fixture
def senders(store):
    return SenderRegistry(store.redis, {"mock": (0.0, 1, 0.0)})


@pytest.fixture
def pools(store, senders, base_env):
    return PoolRegistry(store.redis, senders, ProviderCatalog(load_settings(base_env)))


def pool_of(pools, senders, *names: str, sticky: bool = False, weights=None, **pace: float) -> Pool:
    members = tuple(Member("mock", name, (weights or {}).get(name, 1)) for name in names)
    for member in members:
        if pace:
            senders.set("mock", member.sender, **pace)
    pool = Pool("loja", members, sticky)
    pools.save(pool)
    return pool


def accepted(store, count: int, recipient: str = "+5564999998888", first: int = 0) -> list[str]:
    service = MessageService(store, lambda i: ("q", f"task:{i}"), lambda b, s, e: ("q", "chunk"), 10)
    route = Route("", pool="loja")
    return [service.accept("k", recipient, "hi", f"m-{n}", route).message_id for n in range(first, first + count)]


def claim(store, message_id: str):
    return store.claim(message_id, take_over_expired=True)


def sent(store, claimed) -> None:
    record(store, claimed.message_id, Outcome(statuses.SENT, provider_message_id=f"p-{claimed.message_id}"), 1)


def test_each_message_goes_to_the_member_whose_slot_opens_soonest(store, senders, pools, clock):
    pool_of(pools, senders, "a", "b", "c", rate=1, burst=1)
    ids = accepted(store, 6)
    first = [claim(store, message_id) for message_id in ids]
    assert [c.outcome for c in first] == ["claimed"] * 3 + ["paced"] * 3  # one slot free on each of three
    assert sorted(c.sender for c in first[:3]) == ["a", "b", "c"]
    reserved = [store.get(message_id).sender for message_id in ids[3:]]
    assert sorted(reserved) == ["a", "b", "c"]  # the next second's slots, one on each member
    clock.now += 1
    again = [claim(store, message_id) for message_id in ids[3:]]
    assert [c.outcome for c in again] == ["claimed"] * 3
    assert [c.sender for c in again] == reserved  # each goes on the slot it reserved


def test_weights_share_the_messages_among_members_free_at_once(store, senders, pools):
    pool_of(pools, senders, "big", "small", weights={"big": 2, "small": 1})
    chosen = [claim(store, message_id).sender for message_id in accepted(store, 30)]
    assert chosen.count("big") == 20 and chosen.count("small") == 10


def test_a_sticky_recipient_keeps_the_member_that_wrote_to_them(store, senders, pools, clock):
    pool_of(pools, senders, "a", "b", "c", sticky=True, rate=1, burst=1)
    first = claim(store, accepted(store, 1, recipient="+5564999990001")[0])
    sent(store, first)
    for other in accepted(store, 2, recipient="+5564999990002", first=10):  # others use the free members
        claim(store, other)
    later = accepted(store, 1, recipient="+5564999990001", first=20)[0]
    outcome = claim(store, later)
    assert outcome.outcome == "paced"  # it waits for its member's slot rather than take a free one
    assert store.get(later).sender == first.sender
    clock.now += 1
    assert claim(store, later).sender == first.sender


def test_a_member_that_falls_hands_its_waiting_messages_to_the_others(store, senders, pools, clock):
    pool_of(pools, senders, "a", "b", rate=1, burst=1)
    ids = accepted(store, 6)
    for message_id in ids:
        claim(store, message_id)
    waiting_on_a = [message_id for message_id in ids[2:] if store.get(message_id).sender == "a"]
    assert len(waiting_on_a) == 2
    senders.pause("mock", "a", "paused by an operator")
    due = {member for member, _ in store.redis.zrange("dispatch:due", 0, -1, withscores=True)}
    assert set(waiting_on_a) <= due  # handed back now, not at their old slots
    for message_id in waiting_on_a:
        claim(store, message_id)
        message = store.get(message_id)
        assert message.sender == "b"
        moves = [entry for entry in message.history if entry.get("member")]
        assert moves[-1]["detail"] == "failover from mock/a" and moves[-1]["member"] == "mock/b"


def test_with_every_member_paused_the_pool_holds_its_messages_until_one_resumes(store, senders, pools):
    pool_of(pools, senders, "a", "b")
    senders.pause("mock", "a", "paused by an operator")
    senders.pause("mock", "b", "paused by an operator")
    ids = accepted(store, 3)
    assert [claim(store, message_id).outcome for message_id in ids] == ["pool_held"] * 3
    assert pools.held() == 3
    assert all(store.get(message_id).status == statuses.QUEUED for message_id in ids)  # waiting, not failed
    _, released = senders.resume("mock", "b")
    assert released == 3 and pools.held() == 0
    assert {claim(store, message_id).sender for message_id in ids} == {"b"}


def test_with_every_member_capped_the_messages_wait_for_midnight(store, senders, pools, clock):
    pool_of(pools, senders, "a", "b", daily_cap=1)
    ids = accepted(store, 3)
    assert [claim(store, message_id).outcome for message_id in ids] == ["claimed", "claimed", "paced"]
    midnight = (int(clock.now // 86400) + 1) * 86400
    assert store.redis.zscore("dispatch:due", ids[2]) == midnight
    clock.now = midnight + 1
    assert claim(store, ids[2]).outcome == "claimed"


def test_a_message_whose_pool_was_deleted_before_its_claim_fails_saying_so(store, senders, pools):
    pool_of(pools, senders, "a")
    message_id = accepted(store, 1)[0]
    assert pools.delete("loja") == "ok"
    assert claim(store, message_id).outcome == "failed"
    message = store.get(message_id)
    assert message.status == statuses.FAILED and message.last_error["code"] == "unknown_pool"


def test_an_auto_paused_member_hands_back_what_waited_for_it_and_says_so(store, senders, pools, caplog):
    pool_of(pools, senders, "a", "b", rate=1, burst=1)
    ids = accepted(store, 6)
    claims = [claim(store, message_id) for message_id in ids]
    waiting_on_a = [message_id for message_id in ids[2:] if store.get(message_id).sender == "a"]
    store.redis.hset("dispatch:sender:mock:a", mapping={"state": "paused", "paused_reason": "5 of the last 5 failed"})
    sending_on_a = next(c for c in claims if c.sender == "a")
    note_recorded("ok:paused", sending_on_a, senders)  # what a worker does when advance.lua auto-paused `a`
    due = {member for member, _ in store.redis.zrange("dispatch:due", 0, -1, withscores=True)}
    assert set(waiting_on_a) <= due
    assert "pool member mock/a fell: 2 waiting message(s) go to the other members of loja" in caplog.text
    senders.pause("mock", "b", "paused by an operator")
    assert "pool loja has no member left that can send" in caplog.text


def test_a_message_given_its_member_keeps_it_when_its_pool_is_deleted(store, senders, pools, clock):
    pool_of(pools, senders, "a", rate=1, burst=1)
    first, second = accepted(store, 2)
    assert claim(store, first).outcome == "claimed"
    assert claim(store, second).outcome == "paced"  # given `a`, waiting for its next slot
    assert pools.delete("loja") == "ok"
    clock.now += 1
    claimed = claim(store, second)
    assert (claimed.outcome, claimed.sender) == ("claimed", "a")


def test_a_claim_under_an_open_24_hour_window_still_names_its_pool(redis_url, clock, pools, senders):
    """A free-form message whose contact's window is open goes as its text (no template): the claim's answer
    must still carry every field after the template, the pool included (a pooled failure is retried through
    another member only when the worker knows the pool)."""
    store = MessageStore(connect(redis_url), 86400, 300, 5, clock=clock, session_window=("mock",))
    pool_of(pools, senders, "a")
    day = int(clock.now // 86400)
    store.redis.hset(redis_keys.WINDOW.key(sender_id("mock", "a"), day), "+5564999998888", clock.now - 60)
    claim = store.claim(accepted(store, 1)[0], take_over_expired=True)
    assert (claim.outcome, claim.template, claim.pool, claim.sender) == ("claimed", None, "loja", "a")
    service = MessageService(store, lambda i: ("q", f"task:{i}"), lambda b, s, e: ("q", "chunk"), 10)
    row = new_message("k", "row-1", "+5564999998888", "hi", Route("", pool="loja"))
    batch_id, _ = service.accept_batch("k", [row], Route("", pool="loja"))
    _, claims = store.claim_group(batch_id, [row.message_id])
    assert [(c.template, c.pool, c.sender) for c in claims] == [(None, "loja", "a")]
