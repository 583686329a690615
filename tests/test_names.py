"""Names that come from a request or a setting and become part of a Redis key or a provider's URL path:
a sender whose name ends like another sender's key, an Evolution instance name that climbs out of its
route, a message or batch id that is not one of ours."""

import re
import uuid
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.accounts import ACCOUNT_NAME, key_id
from dispatcher.names import is_message_id, message_id_for
from dispatcher.senders import sender_id
from dispatcher.settings import SettingsError, load_settings
from providers import OutboundMessage, ProviderConfigurationError, TransientProviderError
from providers.evolution import EvolutionInstances, EvolutionProvider
from tests.conftest import API_KEY, OTHER_API_KEY, auth, operator, wait_for
from tests.fakes import evolution
from tests.test_bad_input import refused

# Names no Evolution instance of ours may have: a path that climbs, a query, a fragment, an encoded
# climb, too long, empty, not ASCII, a space, a newline, a leading dash.
HOSTILE_NAMES = (
    "..",
    ".",
    "a..b",
    "../instance/delete/loja-1",
    "a/b",
    "a?b",
    "a#b",
    "%2e%2e",
    "x" * 65,
    "",
    "ünï",
    "a b",
    "a\nb",
    "-a",
)
# Every route of ours that takes an instance name in its path (the senders' routes: an Evolution sender).
NAME_IN_PATH = (
    ("GET", "/v1/instances/{}/connect"),
    ("GET", "/v1/instances/{}/status"),
    ("DELETE", "/v1/instances/{}/logout"),
    ("DELETE", "/v1/instances/{}"),
    ("GET", "/api/v1/instances/{}/connect"),
    ("GET", "/api/v1/instances/{}/status"),
    ("DELETE", "/api/v1/instances/{}/logout"),
    ("DELETE", "/api/v1/instances/{}"),
    ("GET", "/v1/senders/evolution/{}"),
    ("PUT", "/v1/senders/evolution/{}"),
    ("POST", "/v1/senders/evolution/{}/pause"),
    ("POST", "/v1/senders/evolution/{}/resume"),
)
PHONE = "+5564999998888"


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
    assert client.post("/v1/senders/mock/x/pause", headers=operator()).status_code == 200
    held = _send(client, "x", "held-1")
    # x's held messages stay where they always were: a deploy keeps what ordinary senders hold.
    wait_for(lambda: redis.smembers("dispatch:sender:mock:x:held") == {held}, what="x's message to be held")

    for n, sender in enumerate(AWKWARD_SENDERS):
        paced = client.put(f"/v1/senders/mock/{quote(sender)}", json={"rate_per_second": 5}, headers=operator())
        assert paced.status_code == 200, paced.json
        assert paced.json["sender"] == sender and paced.json["rate_per_second"] == 5
        assert paced.json["state"] == "active"
        other = _send(client, sender, f"other-{n}")
        wait_for(lambda: _status(client, other) == "sent", what=f"{sender}'s message to be sent")  # noqa: B023
    assert _status(client, held) == "queued"  # x is still paused, its message still held

    listed = {(row["provider"], row["sender"]) for row in client.get("/v1/senders", headers=auth()).json["senders"]}
    assert {("mock", "x"), *(("mock", sender) for sender in AWKWARD_SENDERS)} <= listed
    resumed = client.post("/v1/senders/mock/x/resume", headers=operator()).json
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


@pytest.fixture
def fake(fake_evolution):
    return fake_evolution


@pytest.fixture
def evolution_client(make_app, fake):
    return make_app(**evolution.CASE.env(fake))


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_instance_name_in_a_path_is_refused_before_evolution(evolution_client, fake, redis_client, name):
    for method, template in NAME_IN_PATH:
        path = template.format(quote(name, safe=""))
        if not name or "/" in name:
            # No route has an empty or a two-segment name: Flask answers 404 (405 for `//status`) on its own.
            assert evolution_client.open(path, method=method, headers=auth()).status_code in (404, 405)
            continue
        field = "sender" if "/senders/" in path else "name"
        body = refused(evolution_client, redis_client, path, method=method, code="invalid_field", field=field)
        text = body["message" if path.startswith("/api/v1/") else "error"]
        assert "1 to 64 letters, digits, _ . or -" in text
    assert fake.raw_paths == []


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_instance_name_in_a_body_is_refused_before_evolution(evolution_client, fake, redis_client, name):
    message = {"recipient_phone": PHONE, "message_body": "Olá", "external_id": "e-1"}
    legacy = {"phone": PHONE, "type": "text", "message": "Olá", "instanceName": name}
    for path, body, field in [
        ("/v1/instances", {"instance_name": name}, "instance_name"),
        ("/api/v1/instances/", {"instanceName": name}, "instanceName"),
        ("/v1/messages/send", {**message, "sender": name}, "sender"),
        ("/v1/messages/bulk", {"sender": name, "messages": [message]}, "sender"),
        ("/api/v1/dispatch/single", legacy, "instanceName"),
        ("/api/v1/dispatch/bulk", {**legacy, "recipients": [{"phone": PHONE}]}, "instanceName"),
    ]:
        if path == "/api/v1/dispatch/bulk":
            del body["phone"]
        refused(evolution_client, redis_client, path, code="invalid_field", field=field, json=body)
    assert fake.raw_paths == []


@pytest.mark.parametrize("name", [name for name in HOSTILE_NAMES if name and "," not in name])
def test_a_hostile_instance_name_in_the_settings_stops_the_service(base_env, name):
    env = {
        **base_env,
        "WHATSAPP_PROVIDER": "evolution",
        "EVOLUTION_API_URL": "http://127.0.0.1:9",
        "EVOLUTION_API_KEY": evolution.API_KEY,
        "EVOLUTION_INSTANCE": f"loja-1,{name}",
    }
    with pytest.raises(SettingsError, match=r"^EVOLUTION_INSTANCE must hold instance names"):
        load_settings(env)


def test_good_instance_names_go_through_every_door(make_app, fake):
    names = ("loja-1", "Loja_2", "a.b", "9" * 64)
    client = make_app(**{**evolution.CASE.env(fake), "EVOLUTION_INSTANCE": ",".join(names)})
    for name in names:
        assert client.post("/v1/instances", json={"instance_name": name}, headers=operator()).status_code in (201, 403)
        assert client.get(f"/api/v1/instances/{name}/status", headers=operator()).status_code == 200
        assert client.get(f"/v1/senders/evolution/{name}", headers=auth()).status_code == 200
    assert all(path.split("?")[0].rsplit("/", 1)[-1] in (*names, "create") for path in fake.raw_paths)


def test_the_evolution_provider_keeps_a_name_inside_its_path_segment(fake):
    """Defence in depth, below the API's checks: whatever name reaches the provider stays one segment."""
    provider = EvolutionProvider(fake.url, evolution.API_KEY, (evolution.INSTANCE,))
    instances = EvolutionInstances(provider)
    assert instances.state("a?b#c")[0] == 404  # Evolution: no instance of that name
    with pytest.raises(TransientProviderError):  # no route takes a name with a slash: an HTML 404
        instances.connect("a/../b%2e", number="5564999998888")
    with pytest.raises(TransientProviderError):
        provider.send(OutboundMessage("msg-1", PHONE, "Olá", "e-1", sender="x/../../instance/delete/loja-1"))
    for name in ("..", ".", ""):
        with pytest.raises(ProviderConfigurationError):
            instances.delete(name)
        with pytest.raises(ProviderConfigurationError):
            provider.send(OutboundMessage("msg-1", PHONE, "Olá", "e-1", sender=name or "."))
    assert fake.raw_paths == [
        "/instance/connectionState/a%3Fb%23c",
        "/instance/connect/a%2F..%2Fb%252e?number=5564999998888",
        "/message/sendText/x%2F..%2F..%2Finstance%2Fdelete%2Floja-1",
    ]
    assert evolution.INSTANCE in fake.instances


@pytest.mark.parametrize("sender", ["a\tb", "a\nb", "\x00", "x" * 65])
def test_any_sender_is_short_text_without_control_characters(client, redis_client, sender):
    """A tab would split /metrics' provider-and-sender fields; a newline has no place in a name."""
    body = {"recipient_phone": PHONE, "message_body": "Olá", "external_id": "e-1", "sender": sender}
    refused(client, redis_client, "/v1/messages/send", code="invalid_field", field="sender", json=body)
    path = f"/v1/senders/mock/{quote(sender, safe='')}"
    refused(client, redis_client, path, method="GET", code="invalid_field", field="sender")


def test_an_id_in_a_path_that_is_not_one_of_ours_names_nothing(client, redis_client):
    """`<batch id>:messages` is the batch's list of rows and `<message id>:content` a message's text (as
    `<message id>:log` is a long history): an id from a path must not reach them (WRONGTYPE, a 500), it is a
    404 as for any unknown id."""
    row = {"recipient_phone": PHONE, "message_body": "Olá"}
    bulk = client.post("/v1/messages/bulk", json={"messages": [{**row, "external_id": "b-1"}]}, headers=auth()).json
    batch_id, message_id = bulk["batch_id"], bulk["results"][0]["message_id"]
    assert redis_client.type(f"dispatch:msg:{message_id}:content") == "string"  # queued: its text is kept
    assert redis_client.type(f"dispatch:batch:{batch_id}:messages") == "list"
    for message in (
        f"{message_id}:content",
        f"{message_id}:log",
        f"{message_id}:history",
        message_id.upper(),
        "..",
        "msg-1",
        f"{message_id}%00",
    ):
        for method, path in [
            ("GET", "/v1/messages/{}"),
            ("POST", "/v1/messages/{}/retry"),
            ("POST", "/v1/messages/{}/cancel"),
        ]:
            refused(
                client,
                redis_client,
                path.format(message),
                404,
                method=method,
                code="message_not_found",
                field="message_id",
            )
        path = f"/api/v1/queue/jobs/{message}/status"
        refused(client, redis_client, path, 404, method="GET", code="job_not_found", field="jobId")
    for batch in (f"{batch_id}:messages", f"{batch_id}:rate", batch_id.upper(), "batch-1"):
        for method, path in [
            ("GET", "/v1/batches/{}"),
            ("GET", "/v1/batches/{}/messages"),
            ("POST", "/v1/batches/{}/pause"),
            ("POST", "/v1/batches/{}/resume"),
            ("POST", "/v1/batches/{}/cancel"),
            ("POST", "/v1/batches/{}/retry-failed"),
        ]:
            refused(
                client, redis_client, path.format(batch), 404, method=method, code="batch_not_found", field="batch_id"
            )
        path = f"/api/v1/queue/jobs/{batch}/status"
        body = refused(client, redis_client, path, 404, method="GET", code="job_not_found", field="jobId")
        assert body["message"] == "Job não encontrado."


def test_an_external_id_with_colons_stays_within_its_accounts_mappings(client):
    """`ext:<account>:<external_id>` is unambiguous only while an account never holds a colon: a plain key's is
    its key_id, 16 hex digits; a named one follows ACCOUNT_NAME."""
    assert all(re.fullmatch("[0-9a-f]{16}", key_id(key)) for key in (API_KEY, OTHER_API_KEY, "a:b", ""))
    assert not ACCOUNT_NAME.match("a:b")
    body = {"recipient_phone": PHONE, "message_body": "Olá", "external_id": f"{key_id(OTHER_API_KEY)}:e-1"}
    mine = client.post("/v1/messages/send", json=body, headers=auth()).json["message_id"]
    theirs = client.post("/v1/messages/send", json={**body, "external_id": "e-1"}, headers=auth(OTHER_API_KEY))
    assert theirs.json["replayed"] is False and theirs.json["message_id"] != mine


@pytest.mark.parametrize(
    ("account", "external_id", "message_id"),
    [
        ("1b32c28cb38c0548", "campaign_42_contact_7", "msg-30e7a516-6af2-8ba6-817e-82cf65c4589a"),
        ("k", "c1", "msg-e2c17457-c8b6-8b88-9061-8db74b091c20"),
        ("acct", "ü é 😀", "msg-b8c9031a-424a-8d12-a189-26ca6aa2c760"),
    ],
)
def test_a_messages_id_stays_what_it_was_when_the_message_was_stored(account, external_id, message_id):
    """A replay finds its message by this id: one computed differently after an upgrade would store a second."""
    assert message_id_for(account, external_id) == message_id


@given(st.text(max_size=20), st.text(max_size=80))
def test_a_messages_id_is_a_version_8_uuid(account, external_id):
    message_id = message_id_for(account, external_id)
    assert is_message_id(message_id)
    parsed = uuid.UUID(message_id.removeprefix("msg-"))
    assert (parsed.version, parsed.variant) == (8, uuid.RFC_4122)
    assert str(parsed) == message_id.removeprefix("msg-")
