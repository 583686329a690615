"""Quotas per account: a request rate shared by every web process, and a daily message count, answered 429."""

from __future__ import annotations

import pytest

from dispatcher import redis_keys
from dispatcher.names import message_id_for
from dispatcher.quotas import QuotaExceeded, Quotas
from dispatcher.settings import QuotaSettings
from dispatcher.store import DAY, connect
from tests.conftest import auth

ACCOUNTS = {"API_KEY": "reach:reach-key, other:other-key"}
PHONE = "+5564999998888"


def send(client, external_id: str, key: str = "reach-key"):
    body = {"recipient_phone": PHONE, "message_body": "Olá", "external_id": external_id}
    return client.post("/v1/messages/send", json=body, headers=auth(key))


def bulk(client, external_ids: list[str], key: str = "reach-key"):
    rows = [{"recipient_phone": PHONE, "external_id": e, "message_body": "x"} for e in external_ids]
    return client.post("/v1/messages/bulk", json={"messages": rows}, headers=auth(key))


def test_the_request_bucket_refills_at_its_rate(redis_url, redis_client, clock):
    quotas = Quotas(connect(redis_url), QuotaSettings(requests_per_second=2, burst=3), clock)
    for _ in range(3):
        quotas.take_request("reach")  # the burst
    with pytest.raises(QuotaExceeded) as refused:
        quotas.take_request("reach")
    assert refused.value.code == "rate_limited"
    assert refused.value.retry_after == pytest.approx(0.5)
    quotas.take_request("other")  # another account's bucket is its own
    clock.now += 0.5
    quotas.take_request("reach")
    with pytest.raises(QuotaExceeded):
        quotas.take_request("reach")
    clock.now += 10  # a quiet spell refills no more than the burst
    for _ in range(3):
        quotas.take_request("reach")
    with pytest.raises(QuotaExceeded):
        quotas.take_request("reach")


def test_the_daily_count_renews_at_midnight_utc(redis_url, redis_client, clock):
    clock.now = (clock.now // DAY + 1) * DAY - 60  # a minute before midnight
    quotas = Quotas(connect(redis_url), QuotaSettings(messages_per_day=5), clock)
    quotas.take_messages("reach", 5)
    with pytest.raises(QuotaExceeded) as refused:
        quotas.take_messages("reach", 1)
    assert refused.value.code == "daily_quota_exceeded"
    assert refused.value.retry_after == pytest.approx(60)
    quotas.give_back("reach", 2)
    with pytest.raises(QuotaExceeded):
        quotas.take_messages("reach", 3)  # all or nothing: 2 left, 3 asked
    quotas.take_messages("reach", 2)
    clock.now += 60
    quotas.take_messages("reach", 5)


def test_two_web_processes_spend_from_one_bucket(make_app):
    """Every web process builds its own app; the bucket lives in Redis, so a tenant cannot multiply its rate."""
    env = {**ACCOUNTS, "ACCOUNT_REQUESTS_PER_SECOND": "0.01", "ACCOUNT_REQUEST_BURST": "4"}
    first, second = make_app(**env), make_app(**env)
    answers = [(first if n % 2 else second).get("/v1/messages/msg-x", headers=auth("reach-key")) for n in range(5)]
    assert [a.status_code for a in answers] == [404, 404, 404, 404, 429]
    refused = answers[-1]
    assert refused.json["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 99
    # The other account is not slowed by this one.
    assert first.get("/v1/messages/msg-x", headers=auth("other-key")).status_code == 404


def test_a_send_past_the_days_count_is_429_and_a_replay_is_never_refused(make_app):
    client = make_app(**ACCOUNTS, ACCOUNT_MESSAGES_PER_DAY="3")
    assert [send(client, f"c1_{n}").status_code for n in range(3)] == [200, 200, 200]
    refused = send(client, "c1_3")
    assert refused.status_code == 429
    assert refused.json["code"] == "daily_quota_exceeded"
    assert 0 < int(refused.headers["Retry-After"]) <= DAY
    # A retry of a request that timed out gets its message back, not a 429.
    again = send(client, "c1_0")
    assert again.status_code == 200 and again.json["replayed"] is True
    assert bulk(client, ["c1_0", "c1_1"]).status_code == 200
    # A bulk request that would go past the count is refused whole: nothing of it is written.
    assert bulk(client, ["c1_1", "c1_9"]).status_code == 429
    found = client.get("/v1/messages", query_string={"external_id": "c1_9"}, headers=auth("reach-key"))
    assert found.status_code == 404
    # The other account has its own day.
    assert send(client, "c1_3", key="other-key").status_code == 200


def test_replays_give_their_count_back(make_app):
    client = make_app(**ACCOUNTS, ACCOUNT_MESSAGES_PER_DAY="4")
    assert bulk(client, ["a", "b"]).status_code == 200
    assert bulk(client, ["a", "b"]).status_code == 200  # counted 2, gave 2 back
    assert bulk(client, ["c", "d"]).status_code == 200
    assert send(client, "e").status_code == 429


def test_a_bulk_requests_invalid_rows_are_not_counted(make_app):
    """A bulk request is counted whole before its rows are validated when the day has room for all of them (its
    rows are then written while the next ones are validated), and given back what was not a new message; a
    request with more rows than the day has left is validated first, and only its new messages counted."""
    client = make_app(**ACCOUNTS, ACCOUNT_MESSAGES_PER_DAY="4")

    def rows(*external_ids: str) -> list[dict]:
        phone = lambda e: "123" if e.startswith("bad") else PHONE  # noqa: E731
        return [{"recipient_phone": phone(e), "external_id": e, "message_body": "x"} for e in external_ids]

    more_than_the_day = client.post("/v1/messages/bulk", json={"messages": rows("a", "b", "bad1", "bad2", "bad3")},
                                    headers=auth("reach-key"))  # fmt: skip
    assert (more_than_the_day.status_code, more_than_the_day.json["accepted"]) == (200, 2)
    within_the_day = client.post("/v1/messages/bulk", json={"messages": rows("c", "bad4")}, headers=auth("reach-key"))
    assert (within_the_day.status_code, within_the_day.json["accepted"]) == (200, 1)
    assert send(client, "d").status_code == 200  # the fourth of the day
    assert send(client, "e").status_code == 429


def test_seed_routes_answer_429_in_their_own_shape(make_app):
    client = make_app(**ACCOUNTS, ACCOUNT_MESSAGES_PER_DAY="1")
    body = {"instanceName": "loja-1", "phone": "5564999998888", "type": "text", "message": "Olá"}
    assert client.post("/api/v1/dispatch/single", json=body, headers=auth("reach-key")).status_code == 200
    refused = client.post("/api/v1/dispatch/single", json=body, headers=auth("reach-key"))
    assert refused.status_code == 429
    assert refused.json["success"] is False and refused.json["code"] == "daily_quota_exceeded"
    assert "Retry-After" in refused.headers


def test_a_single_send_spends_its_token_in_the_step_that_creates_it(make_app, redis_client):
    """The create script checks the rate itself: a refused send writes nothing, and reads spend the same bucket."""
    client = make_app(**ACCOUNTS, ACCOUNT_REQUESTS_PER_SECOND="0.01", ACCOUNT_REQUEST_BURST="3")
    assert send(client, "r1").status_code == 200
    assert send(client, "r1").json["replayed"] is True  # a replay is a request too
    assert client.get("/v1/messages/msg-x", headers=auth("reach-key")).status_code == 404
    refused = send(client, "r2")
    assert refused.status_code == 429 and refused.json["code"] == "rate_limited"
    assert not redis_client.exists(redis_keys.MESSAGE.key(message_id_for("reach", "r2")))
