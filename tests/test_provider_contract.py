"""One contract, every provider: the same outcomes from each provider's fake, over real HTTP.

At the provider level: a success, each error class, a timeout, a proxy's HTML page, a refused
connection. End to end (API → worker → fake): each ends in the right status after the right
number of attempts, and a sent message keeps the provider's id.
"""

from __future__ import annotations

import pytest
import requests

from dispatcher.provider_setup import build_provider
from dispatcher.settings import load_settings
from providers import PermanentProviderError, ProviderConfigurationError, TransientProviderError
from providers.base import Media, OutboundMessage
from scripts.embedded_redis import free_port
from tests.conftest import auth, wait_for
from tests.fakes.server import Scripted
from tests.provider_cases import all_cases

CASES = all_cases()

TEXT = OutboundMessage("msg-1", "+5564999998888", "Olá! 🎉", "campaign_1_contact_1")
MEDIA = OutboundMessage(
    "msg-2",
    "+5564999998888",
    "Cardápio",
    "campaign_1_contact_2",
    media=Media("https://example.com/files/menu.pdf", "document"),
)


@pytest.fixture(params=sorted(CASES))
def case(request):
    return CASES[request.param]


@pytest.fixture
def fake(case):
    server = case.start_fake()
    yield server
    server.stop()


def provider_for(case, fake, **overrides):
    env = {
        "API_KEY": "a-long-test-api-key-0123",
        **case.env(fake),
        "PROVIDER_CONNECT_TIMEOUT": "0.5",
        "PROVIDER_READ_TIMEOUT": "1",
        **overrides,
    }
    settings = load_settings(env)
    return build_provider(settings.whatsapp_provider, settings)


def test_a_text_is_sent_and_its_id_returned(case, fake):
    result = provider_for(case, fake).send(TEXT)
    assert result.provider_message_id
    assert len(fake.received) == 1
    assert fake.spec_errors == []


def test_a_document_is_sent(case, fake):
    provider = provider_for(case, fake)
    if "media" not in provider.kinds:
        pytest.skip(f"{case.name} sends no media")
    assert provider.send(MEDIA).provider_message_id
    assert fake.spec_errors == []


def test_requests_meet_the_official_spec(case, fake):
    if case.spec_available is None:
        pytest.skip(f"{case.name} has no official spec")
    if not case.spec_available():
        pytest.skip("the provider specs are not in PROVIDER_SPECS_DIR (default ../shared/providers)")
    provider = provider_for(case, fake)
    provider.send(TEXT)
    if "media" in provider.kinds:
        provider.send(MEDIA)
    assert fake.received and fake.spec_errors == []


@pytest.mark.parametrize(
    ("error_class", "expected"),
    [
        ("transient", TransientProviderError),
        ("permanent", PermanentProviderError),
        ("configuration", ProviderConfigurationError),
    ],
)
def test_each_error_class(case, fake, error_class, expected):
    fake.script(getattr(case, error_class))
    with pytest.raises(expected) as raised:
        provider_for(case, fake).send(TEXT)
    assert raised.type is expected  # not a subclass standing in for another class
    assert raised.value.raw is not None  # the provider's answer is kept
    assert (raised.value.provider, raised.value.status) == (case.name, getattr(case, error_class).status)


def test_a_429_is_throttling_with_its_retry_after(case, fake):
    fake.script(Scripted(429, case.transient.body, {"Retry-After": "7"}))
    with pytest.raises(TransientProviderError) as raised:
        provider_for(case, fake).send(TEXT)
    assert raised.value.retry_after == 7
    assert raised.value.throttled  # a 429 holds the whole sender back, not just this message


def test_a_provider_that_hangs_times_out(case, fake):
    fake.script(Scripted(hang=2.5))
    with pytest.raises(TransientProviderError) as raised:
        provider_for(case, fake).send(TEXT)
    assert raised.value.code == "timeout"


def test_a_proxy_html_page_is_transient(case, fake):
    fake.script(Scripted(502, html=True))
    with pytest.raises(TransientProviderError) as raised:
        provider_for(case, fake).send(TEXT)
    assert "not JSON" in str(raised.value)


def test_a_refused_connection_is_transient(case, fake):
    closed = f"http://127.0.0.1:{free_port()}"
    env = {key: value.replace(fake.url, closed) for key, value in case.env(fake).items()}
    settings = load_settings({"API_KEY": "a-long-test-api-key-0123", **env})
    with pytest.raises(TransientProviderError) as raised:
        build_provider(settings.whatsapp_provider, settings).send(TEXT)
    assert raised.value.code == "connection_error"
    assert raised.value.status is None and raised.value.provider == case.name
    assert isinstance(raised.value.__cause__, requests.ConnectionError)  # the cause is kept


# --- end to end: API → worker → fake ---


def send(client, external_id):
    answer = client.post(
        "/v1/messages/send",
        headers=auth(),
        json={"recipient_phone": "+5564999998888", "message_body": "Olá!", "external_id": external_id},
    )
    assert answer.status_code == 200, answer.json
    return answer.json["message_id"]


def final(client, message_id, status):
    return wait_for(
        lambda: (m := client.get(f"/v1/messages/{message_id}", headers=auth()).json)["status"] == status and m,
        30,
        what=f"{message_id} {status}",
    )


@pytest.fixture
def service(case, fake, make_app, start_worker):
    env = {**case.env(fake), "JOB_ATTEMPTS": "3", "JOB_BACKOFF_DELAY": "50"}
    client = make_app(**env)
    start_worker(**env)
    return client


def test_end_to_end_sent_with_the_providers_id(service, fake):
    message = final(service, send(service, "e2e-ok"), "sent")
    assert message["provider_message_id"]
    assert message["attempts"] == 1
    assert len(fake.received) == 1


@pytest.mark.parametrize("error_class", ["permanent", "configuration"])
def test_end_to_end_errors_that_are_not_retried(service, case, fake, error_class):
    fake.script(getattr(case, error_class))
    message = final(service, send(service, f"e2e-{error_class}"), "failed")
    assert message["attempts"] == 1
    assert message["last_error"]["kind"] == error_class
    assert len(fake.received) == 1


def test_end_to_end_transient_errors_are_retried_until_sent(service, case, fake):
    fake.script(case.transient, Scripted(502, html=True))
    message = final(service, send(service, "e2e-transient"), "sent")
    assert message["attempts"] == 3
    assert len(fake.received) == 3


def test_end_to_end_transient_errors_exhaust_the_attempts(service, case, fake):
    fake.script(case.transient, case.transient, case.transient)
    message = final(service, send(service, "e2e-exhausted"), "failed")
    assert message["attempts"] == 3
    assert message["last_error"]["kind"] == "transient"
    assert len(fake.received) == 3


def test_end_to_end_a_hang_is_retried(service, fake):
    fake.script(Scripted(hang=2.5))
    message = final(service, send(service, "e2e-hang"), "sent")
    assert message["attempts"] == 2
