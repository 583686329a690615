"""The fakes themselves: they must refuse what the real providers refuse, or they prove nothing."""

import pytest
import requests

from tests.fakes import evolution


@pytest.fixture
def fake_evolution():
    server = evolution.FakeEvolution().start()
    yield server
    server.stop()


def test_evolution_fake_refuses_a_body_the_spec_refuses(fake_evolution):
    if not evolution.spec_available():
        pytest.skip("the provider specs are not in PROVIDER_SPECS_DIR (default ../shared/providers)")
    answer = requests.post(
        f"{fake_evolution.url}/message/sendText/{evolution.INSTANCE}",
        json={"number": "5564999998888"},
        headers={"apikey": evolution.API_KEY},
        timeout=5,
    )
    assert answer.status_code == 400
    assert fake_evolution.spec_errors == ["'text' is a required property"]


def test_evolution_fake_checks_the_key_and_the_instance(fake_evolution):
    body = {"number": "5564999998888", "text": "oi"}
    assert (
        requests.post(
            f"{fake_evolution.url}/message/sendText/{evolution.INSTANCE}",
            json=body,
            headers={"apikey": "wrong"},
            timeout=5,
        ).status_code
        == 401
    )
    missing = requests.post(
        f"{fake_evolution.url}/message/sendText/nope", json=body, headers={"apikey": evolution.API_KEY}, timeout=5
    )
    assert missing.status_code == 404
    assert missing.json()["response"]["message"] == ['The "nope" instance does not exist']


def test_the_webhook_provider_posts_reach_towns_fields_with_the_secret():
    from dispatcher.provider_setup import build_provider
    from dispatcher.settings import load_settings
    from providers.base import OutboundMessage
    from tests.fakes import webhook

    fake = webhook.FakeBridge().start()
    try:
        settings = load_settings({"API_KEY": "a-long-test-api-key-0123", **webhook.CASE.env(fake)})
        result = build_provider("webhook", settings).send(
            OutboundMessage("msg-1", "+5564999998888", "Olá", "campaign_1_contact_1", sender="loja-1")
        )
        assert result.provider_message_id.startswith("n8n-")
        sent = fake.received[0]
        assert sent.headers["X-Dispatcher-Secret"] == webhook.SECRET
        assert {k: sent.json[k] for k in ("phone", "message", "external_id", "message_id", "sender")} == {
            "phone": "+5564999998888",
            "message": "Olá",
            "external_id": "campaign_1_contact_1",
            "message_id": "msg-1",
            "sender": "loja-1",
        }
        assert sent.json["timestamp"].endswith("Z")
    finally:
        fake.stop()
