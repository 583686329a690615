"""Names that come from a request or a setting and become part of a Redis key or a provider's URL path:
a sender whose name ends like another sender's key, an Evolution instance name that climbs out of its
route, a message or batch id that is not one of ours."""

from urllib.parse import quote

from dispatcher.senders import sender_id
from tests.conftest import auth, wait_for


def _send(client, sender: str, external_id: str) -> str:
    answer = client.post(
        "/v1/messages/send",
        headers=auth(),
        json={"recipient_phone": "+5564999998888", "message_body": "Olá", "external_id": external_id, "sender": sender},
    )
    assert answer.status_code == 200, answer.json
    return answer.json["message_id"]


def _status(client, message_id: str) -> str:
    return client.get(f"/v1/messages/{message_id}", headers=auth()).json["status"]


# Names that end like another sender's keys, or look like an encoded one.
AWKWARD_SENDERS = ("x:held", "x:outcomes", "x%3Aheld", "50%:off")


def test_a_sender_named_after_another_senders_keys_keeps_its_own(make_app, start_worker):
    client = make_app()
    redis = client.application.extensions["dispatcher"].store.redis
    start_worker()
    assert client.post("/v1/senders/mock/x/pause", headers=auth()).status_code == 200
    held = _send(client, "x", "held-1")
    # x's held messages stay where they always were: a deploy keeps what ordinary senders hold.
    wait_for(lambda: redis.smembers("dispatch:sender:mock:x:held") == {held}, what="x's message to be held")

    for n, sender in enumerate(AWKWARD_SENDERS):
        paced = client.put(f"/v1/senders/mock/{quote(sender)}", json={"rate_per_second": 5}, headers=auth())
        assert paced.status_code == 200, paced.json
        assert paced.json["sender"] == sender and paced.json["rate_per_second"] == 5
        assert paced.json["state"] == "active"
        other = _send(client, sender, f"other-{n}")
        wait_for(lambda: _status(client, other) == "sent", what=f"{sender}'s message to be sent")  # noqa: B023
    assert _status(client, held) == "queued"  # x is still paused, its message still held

    listed = {(row["provider"], row["sender"]) for row in client.get("/v1/senders", headers=auth()).json["senders"]}
    assert {("mock", "x"), *(("mock", sender) for sender in AWKWARD_SENDERS)} <= listed
    resumed = client.post("/v1/senders/mock/x/resume", headers=auth()).json
    assert resumed["released"] == 1
    wait_for(lambda: _status(client, held) == "sent", what="x's held message to be sent once resumed")
    for sender in AWKWARD_SENDERS:
        assert client.get(f"/v1/senders/mock/{quote(sender)}", headers=auth()).json["rate_per_second"] == 5


def test_ordinary_sender_names_keep_their_keys():
    for provider, sender in [
        ("evolution", "loja-1"),
        ("evolution", "Loja_2.sp"),
        ("twilio", "+14155238886"),
        ("twilio", "MG" + "0" * 32),
        ("meta", "106540352242922"),
        ("webhook", "n8n bridge @ 5511999999999"),
    ]:
        assert sender_id(provider, sender) == f"{provider}:{sender}"
    assert sender_id("mock", "x:held") == "mock:x%3Aheld"
    assert sender_id("mock", "x%3Aheld") == "mock:x%253Aheld"
