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
