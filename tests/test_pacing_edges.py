"""Pacing decisions at their edges, with an injected clock (days pass without waiting): the daily cap
counts a message once, however late it comes back for its slot; a warm-up cap grows day by day."""

import pytest

from dispatcher.messages import MessageService, Route
from dispatcher.senders import SenderRegistry
from dispatcher.store import MessageStore, connect


@pytest.fixture
def store(redis_url, redis_client, clock):
    return MessageStore(connect(redis_url), 86400, 300, 5, sender_limits={"mock": (1.0, 1, 0.0)}, clock=clock)


def accepted(store, sender: str, count: int, **pace: float) -> list[str]:
    """`count` messages from `sender`, whose own pace is `pace`."""
    SenderRegistry(store.redis, {}).set("mock", sender, **pace)
    service = MessageService(store, lambda i: ("q", f"task:{i}"), lambda b, s, e: ("q", "chunk"), 10)
    route = Route("mock", sender=sender)
    return [service.accept("k", "+5564999998888", "hi", f"{sender}-{n}", route).message_id for n in range(count)]


def test_a_paced_message_released_late_is_not_counted_twice_against_the_daily_cap(store, clock):
    ids = accepted(store, "loja-1", 5, rate=1, burst=1, daily_cap=3)
    first = [store.claim(message_id, take_over_expired=True).outcome for message_id in ids]
    assert first == ["claimed", "paced", "paced", "paced", "paced"]  # the 4th and 5th: over the cap, till midnight
    clock.now += 30  # the queue was busy: the two paced within the cap come back long after their slots
    assert store.claim(ids[1], take_over_expired=True).outcome == "claimed"  # not counted again: still within 3
    clock.now += 1  # one a second
    assert store.claim(ids[2], take_over_expired=True).outcome == "claimed"
    assert [store.claim(message_id, take_over_expired=True).outcome for message_id in ids[3:]] == ["paced", "paced"]
    assert store.redis.get(f"dispatch:sent-today:mock:loja-1:{int(clock.now // 86400)}") == "3"


def test_a_warm_up_cap_grows_day_by_day(store, clock):
    ids = accepted(store, "novo", 7, rate=0, warmup_start=2, warmup_growth=2)
    day_one = [store.claim(message_id, take_over_expired=True).outcome for message_id in ids]
    assert day_one == ["claimed"] * 2 + ["paced"] * 5  # a new number: 2 on its first day
    clock.now += 86400  # the next day: 4
    day_two = [store.claim(message_id, take_over_expired=True).outcome for message_id in ids[2:]]
    assert day_two == ["claimed"] * 4 + ["paced"]
