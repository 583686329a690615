"""Back-pressure: a provider's 429 with Retry-After holds the whole sender back on every worker."""

from datetime import datetime

from tests.conftest import auth, wait_for
from tests.fakes import evolution
from tests.fakes.server import Scripted


def first_sending(client, message_id):
    history = client.get(f"/v1/messages/{message_id}", headers=auth()).json["history"]
    return min(
        datetime.fromisoformat(e["at"].replace("Z", "+00:00")).timestamp() for e in history if e["status"] == "sending"
    )


def status(client, message_id):
    return client.get(f"/v1/messages/{message_id}", headers=auth()).json["status"]


def send(client, external_id):
    return client.post(
        "/v1/messages/send",
        headers=auth(),
        json={"recipient_phone": "+5564999998888", "message_body": "Olá", "external_id": external_id},
    ).json["message_id"]


def test_a_429_holds_the_sender_for_its_retry_after(make_app, start_worker):
    fake = evolution.FakeEvolution().start()
    try:
        env = {**evolution.CASE.env(fake), "SENDER_RATE_EVOLUTION": "0", "JOB_BACKOFF_DELAY": "50"}
        client = make_app(**env)
        start_worker(**env)
        start_worker(**env)
        fake.script(
            Scripted(
                429,
                {"status": 429, "error": "Too Many Requests", "response": {"message": ["slow"]}},
                {"Retry-After": "2"},
            )
        )
        throttled = send(client, "bp-1")
        wait_for(lambda: status(client, throttled) == "retrying", what="the 429")
        other = send(client, "bp-2")  # another message of the same sender, on any worker
        wait_for(lambda: status(client, other) == "sent", what="the held message")
        assert first_sending(client, other) - first_sending(client, throttled) >= 1.8
        wait_for(lambda: status(client, throttled) == "sent", what="the throttled message, after the hold")
    finally:
        fake.stop()
