"""Twilio beyond the shared contract: the fake refuses what Twilio refuses, each kind of message
reaches Twilio in the form its API takes, and each Twilio error code lands in the right error class.

The provider is built from settings, as the service builds it, and talks to the fake over HTTP.
"""

from __future__ import annotations

import json
import logging

import pytest
import requests

from dispatcher.provider_setup import build_provider
from dispatcher.settings import load_settings
from providers import PermanentProviderError, ProviderConfigurationError, TransientProviderError
from providers.base import Media, OutboundMessage, Template
from tests.fakes import twilio
from tests.fakes.server import Scripted

RECIPIENT = "+5564999998888"
CONTENT_SID = "HX" + "0123456789abcdef" * 2
TEXT = OutboundMessage("msg-1", RECIPIENT, "Olá! 🎉")


@pytest.fixture
def fake():
    server = twilio.FakeTwilio().start()
    yield server
    server.stop()


def provider_for(fake, **env):
    settings = load_settings({"API_KEY": "a-long-test-api-key-0123", **twilio.CASE.env(fake), **env})
    return build_provider("twilio", settings)


def sent_form(fake) -> dict[str, list[str]]:
    assert fake.spec_errors == []
    (received,) = fake.received
    return received.form


# --- the fake ---


def post(fake, form, auth=(twilio.ACCOUNT_SID, twilio.AUTH_TOKEN)):
    url = f"{fake.url}/2010-04-01/Accounts/{twilio.ACCOUNT_SID}/Messages.json"
    return requests.post(url, data=form, auth=auth, timeout=5)


@pytest.mark.parametrize(
    ("form", "spec_errors"),
    [
        ({"From": f"whatsapp:{twilio.FROM}", "Body": "oi"}, ["'To' is a required property"]),
        (
            {"To": f"whatsapp:{RECIPIENT}", "From": f"whatsapp:{twilio.FROM}", "ContentSid": "HX1"},
            ["'HX1' is too short", "'HX1' does not match '^HX[0-9a-fA-F]{32}$'"],
        ),
    ],
)
def test_the_fake_refuses_what_the_spec_refuses(fake, form, spec_errors):
    if not twilio.spec_available():
        pytest.skip("the provider specs are not in PROVIDER_SPECS_DIR (default ../shared/providers)")
    answer = post(fake, form)
    assert answer.status_code == 400
    assert answer.json()["code"] == 20001
    assert fake.spec_errors == spec_errors


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [
        ({"To": RECIPIENT, "From": f"whatsapp:{twilio.FROM}", "Body": "oi"}, 400, 21211),  # an SMS, not WhatsApp
        ({"To": f"whatsapp:{RECIPIENT}", "Body": "oi"}, 400, 21603),
        ({"To": f"whatsapp:{RECIPIENT}", "From": "whatsapp:+5511988887777", "Body": "oi"}, 400, 63007),
        ({"To": f"whatsapp:{RECIPIENT}", "From": f"whatsapp:{twilio.FROM}"}, 400, 21619),
    ],
)
def test_the_fake_refuses_what_whatsapp_refuses(fake, form, status, code):
    answer = post(fake, form)
    assert (answer.status_code, answer.json()["code"]) == (status, code)


def test_the_fake_checks_the_credentials(fake):
    answer = post(fake, {"To": f"whatsapp:{RECIPIENT}", "From": f"whatsapp:{twilio.FROM}", "Body": "oi"}, ("x", "y"))
    assert answer.status_code == 401
    assert answer.json() == twilio.CASE.configuration.body


# --- what the provider sends ---


def test_a_text(fake):
    result = provider_for(fake).send(TEXT)
    assert result.provider_message_id.startswith("SM")
    assert result.provider_status == "queued"
    assert result.raw["to"] == f"whatsapp:{RECIPIENT}"
    assert sent_form(fake) == {
        "To": [f"whatsapp:{RECIPIENT}"],
        "From": [f"whatsapp:{twilio.FROM}"],
        "Body": ["Olá! 🎉"],
    }


@pytest.mark.parametrize(
    ("text", "caption", "body"),
    [("Cardápio", "Menu de hoje", ["Menu de hoje"]), ("Cardápio", "", ["Cardápio"]), ("", "", None)],
)
def test_a_media_with_its_caption_or_text(fake, text, caption, body):
    media = Media("https://example.com/files/menu.pdf", "document", caption=caption)
    provider_for(fake).send(OutboundMessage("msg-2", RECIPIENT, text, media=media))
    form = sent_form(fake)
    assert form["MediaUrl"] == ["https://example.com/files/menu.pdf"]
    assert form.get("Body") == body


def test_a_template_by_its_content_sid(fake):
    template = Template(CONTENT_SID, variables={"1": "Ana", "2": "15h"})
    provider_for(fake).send(OutboundMessage("msg-3", RECIPIENT, template=template))
    form = sent_form(fake)
    assert form["ContentSid"] == [CONTENT_SID]
    assert json.loads(form["ContentVariables"][0]) == {"1": "Ana", "2": "15h"}
    assert "Body" not in form


def test_a_template_without_variables_sends_none(fake):
    provider_for(fake).send(OutboundMessage("msg-3", RECIPIENT, template=Template(CONTENT_SID)))
    assert "ContentVariables" not in sent_form(fake)


def test_a_messaging_service_sender(fake):
    provider = provider_for(fake, TWILIO_MESSAGING_SERVICE_SID=twilio.MESSAGING_SERVICE_SID)
    result = provider.send(OutboundMessage("msg-4", RECIPIENT, "oi", sender=twilio.MESSAGING_SERVICE_SID))
    assert result.provider_status == "accepted"
    form = sent_form(fake)
    assert form["MessagingServiceSid"] == [twilio.MESSAGING_SERVICE_SID]
    assert "From" not in form


def test_the_status_callback_when_a_public_url_is_set(fake):
    provider_for(fake, PUBLIC_BASE_URL="https://dispatcher.example.com").send(TEXT)
    assert sent_form(fake)["StatusCallback"] == ["https://dispatcher.example.com/v1/webhooks/twilio"]


# --- what the provider makes of Twilio's errors ---


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (429, 20429, TransientProviderError),
        (500, 20500, TransientProviderError),
        (503, 20503, TransientProviderError),
        (400, 63017, TransientProviderError),
        (400, 63018, TransientProviderError),
        (400, 21211, PermanentProviderError),
        (400, 21610, PermanentProviderError),
        (400, 21614, PermanentProviderError),
        (400, 63003, PermanentProviderError),
        (400, 63016, PermanentProviderError),
        (400, 63024, PermanentProviderError),
        (400, 21408, PermanentProviderError),  # not in the table: a 4xx refuses this message
        (403, 20403, PermanentProviderError),
        (401, 20003, ProviderConfigurationError),
        (404, 20404, ProviderConfigurationError),
        (400, 21606, ProviderConfigurationError),
        (400, 63007, ProviderConfigurationError),
        (400, 21703, ProviderConfigurationError),
        (400, 21704, ProviderConfigurationError),
    ],
)
def test_each_twilio_error_code(fake, status, code, expected):
    body = twilio.error_body(status, code, "as Twilio says it")
    fake.script(Scripted(status, body))
    with pytest.raises(expected) as raised:
        provider_for(fake).send(TEXT)
    assert raised.type is expected
    assert (raised.value.code, raised.value.raw) == (str(code), body)


def test_a_throttled_send_says_when_to_retry(fake):
    fake.script(Scripted(400, twilio.error_body(400, 63018, "Rate limit exceeded"), {"Retry-After": "3"}))
    with pytest.raises(TransientProviderError) as raised:
        provider_for(fake).send(TEXT)
    assert raised.value.retry_after == 3


def test_an_invalid_number_is_permanent_and_never_logged_in_full(fake, caplog):
    fake.invalid_numbers.add(RECIPIENT)
    caplog.set_level(logging.DEBUG, logger="providers")
    with pytest.raises(PermanentProviderError) as raised:
        provider_for(fake).send(TEXT)
    assert raised.value.code == "21211"
    assert RECIPIENT in raised.value.raw["message"]  # the answer is kept as it came
    assert RECIPIENT not in str(raised.value)
    assert caplog.records and RECIPIENT not in caplog.text
    assert "Olá" not in "".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)


def test_an_unknown_sender_is_a_configuration_error(fake):
    with pytest.raises(ProviderConfigurationError) as raised:
        provider_for(fake).send(OutboundMessage("msg-5", RECIPIENT, "oi", sender="+5511988887777"))
    assert raised.value.code == "63007"
