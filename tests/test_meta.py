"""The Meta Cloud API provider against its fake: the bodies it sends, and how each of Meta's error codes is sorted.

The shared outcomes (success, each error class, timeouts, HTML pages, end to end) are in
test_provider_contract.py; this file covers what only Meta has.
"""

from __future__ import annotations

import logging

import pytest
import requests

from providers import PermanentProviderError, ProviderConfigurationError, TransientProviderError
from providers.base import MEDIA_KINDS, Media, OutboundMessage, Template
from providers.meta import MetaProvider
from tests.fakes import meta
from tests.fakes.server import Scripted, specs_dir

RECIPIENT = "+5564999998888"
ENVELOPE = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": RECIPIENT}
OTHER_PHONE_NUMBER_ID = "206540352242923"


@pytest.fixture
def fake(fake_meta):
    return fake_meta


@pytest.fixture
def provider(fake):
    return MetaProvider(
        fake.url, meta.VERSION, meta.ACCESS_TOKEN, (meta.PHONE_NUMBER_ID, OTHER_PHONE_NUMBER_ID), read_timeout=5
    )


def message(**fields) -> OutboundMessage:
    return OutboundMessage("msg-1", RECIPIENT, **fields)


def sent_body(provider, fake, outbound: OutboundMessage) -> dict:
    """Send `outbound` and return the body the fake got, after checking the spec accepted it."""
    provider.send(outbound)
    assert fake.spec_errors == []
    return fake.received[-1].json


# --- the fake itself ---


def post(fake, body, token=meta.ACCESS_TOKEN, phone_number_id=meta.PHONE_NUMBER_ID):
    return requests.post(
        f"{fake.url}/{meta.VERSION}/{phone_number_id}/messages",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )


@pytest.mark.parametrize(
    ("body", "spec_error"),
    [
        ({**ENVELOPE, "type": "text"}, "'text' is a required property"),
        ({"type": "text", "text": {"body": "oi"}}, "'messaging_product' is a required property"),
        ({**ENVELOPE, "type": "image", "image": {"caption": "no link"}}, "is not valid under any of the given schemas"),
        ({**ENVELOPE, "type": "text", "text": {"body": "oi"}, "bogus": 1}, "'bogus' was unexpected"),
        (
            {**ENVELOPE, "type": "template", "template": {"name": "promo", "language": {"code": "pt_BR"}}},
            "'policy' is a required property",
        ),
    ],
)
def test_the_fake_refuses_what_the_spec_refuses(fake, body, spec_error):
    if specs_dir() is None:
        pytest.skip("the provider specs are not in PROVIDER_SPECS_DIR (default ../shared/providers)")
    answer = post(fake, body)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == 100
    assert any(spec_error in error for error in fake.spec_errors), fake.spec_errors


def test_the_fake_accepts_the_documented_text_message(fake):
    answer = post(fake, {**ENVELOPE, "type": "text", "text": {"body": "oi", "preview_url": False}})
    assert answer.status_code == 200
    assert answer.json()["contacts"] == [{"input": RECIPIENT, "wa_id": RECIPIENT[1:]}]
    assert answer.json()["messages"][0]["id"].startswith("wamid.")
    assert fake.spec_errors == []


def test_the_fake_checks_the_token_and_the_phone_number_id(fake):
    body = {**ENVELOPE, "type": "text", "text": {"body": "oi"}}
    wrong_token = post(fake, body, token="wrong")
    assert (wrong_token.status_code, wrong_token.json()["error"]["code"]) == (401, 190)
    unknown_id = post(fake, body, phone_number_id="999")
    assert (unknown_id.status_code, unknown_id.json()["error"]["code"]) == (400, 100)


# --- request shapes ---


def test_a_text(provider, fake):
    result = provider.send(message(text="Olá! 🎉"))
    received = fake.received[-1]
    assert received.path == f"/{meta.VERSION}/{meta.PHONE_NUMBER_ID}/messages"
    assert received.headers["Authorization"] == f"Bearer {meta.ACCESS_TOKEN}"
    assert received.json == {**ENVELOPE, "type": "text", "text": {"body": "Olá! 🎉", "preview_url": False}}
    assert fake.spec_errors == []
    assert result.provider_message_id.startswith("wamid.")
    assert result.provider_status == "accepted"
    assert result.raw["contacts"][0]["input"] == RECIPIENT


def test_the_sender_picks_the_phone_number_id(provider, fake):
    fake.phone_number_ids.add(OTHER_PHONE_NUMBER_ID)
    provider.send(message(text="oi", sender=OTHER_PHONE_NUMBER_ID))
    assert fake.received[-1].path == f"/{meta.VERSION}/{OTHER_PHONE_NUMBER_ID}/messages"


@pytest.mark.parametrize("kind", [kind for kind in MEDIA_KINDS if kind != "document"])
def test_media(provider, fake, kind):
    url = f"https://example.com/files/{kind}"
    body = sent_body(provider, fake, message(text="Cardápio", media=Media(url, kind)))
    expected = {"link": url} if kind == "audio" else {"link": url, "caption": "Cardápio"}
    assert body == {**ENVELOPE, "type": kind, kind: expected}


def test_the_media_caption_wins_over_the_text(provider, fake):
    body = sent_body(
        provider, fake, message(text="texto", media=Media("https://example.com/a.jpg", "image", "legenda"))
    )
    assert body["image"]["caption"] == "legenda"


def test_a_document_keeps_its_filename(provider, fake):
    media = Media("https://example.com/files/menu.pdf", "document", filename="Cardápio de verão.pdf")
    body = sent_body(provider, fake, message(media=media))
    assert body["document"] == {"link": media.url, "filename": "Cardápio de verão.pdf"}


def test_a_document_is_named_after_its_url(provider, fake):
    body = sent_body(provider, fake, message(media=Media("https://example.com/files/menu.pdf?v=2", "document")))
    assert body["document"]["filename"] == "menu.pdf"


def test_a_template_with_language_and_components(provider, fake):
    components = [{"type": "body", "parameters": [{"type": "text", "text": "Maria"}]}]
    body = sent_body(provider, fake, message(template=Template("pedido_confirmado", "en_US", components)))
    assert body == {
        **ENVELOPE,
        "type": "template",
        "template": {
            "name": "pedido_confirmado",
            "language": {"code": "en_US", "policy": "deterministic"},
            "components": components,
        },
    }


def test_a_template_defaults_to_brazilian_portuguese(provider, fake):
    body = sent_body(provider, fake, message(template=Template("hello_world")))
    assert body["template"] == {"name": "hello_world", "language": {"code": "pt_BR", "policy": "deterministic"}}


def test_the_status_meta_gives_is_kept(provider, fake):
    answer = {
        "messaging_product": "whatsapp",
        "messages": [{"id": "wamid.X", "message_status": "held_for_quality_assessment"}],
    }
    fake.script(Scripted(200, answer))
    assert provider.send(message(text="oi")).provider_status == "held_for_quality_assessment"


def test_logs_hide_the_phone_and_the_text(provider, fake, caplog):
    fake.undeliverable.add(RECIPIENT)
    with caplog.at_level(logging.DEBUG, logger="providers.meta"), pytest.raises(PermanentProviderError):
        provider.send(message(text="segredo"))
    assert caplog.records
    assert all(RECIPIENT[1:] not in record.getMessage() for record in caplog.records)
    assert all("segredo" not in record.getMessage() for record in caplog.records if record.levelno >= logging.INFO)


# --- errors ---


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        *((code, TransientProviderError) for code in (130429, 4, 80007, 131000, 131016, 2, 131056)),
        *((code, PermanentProviderError) for code in (131026, 131047, 131050, 131049, 131048, 131051, 131052, 131053)),
        *(
            (code, ProviderConfigurationError)
            for code in (190, 368, 131031, 131042, 100, 131008, 131009, 10, 200, 3, 132000, 132001, 132012, 132069)
        ),
        (133010, ProviderConfigurationError),
    ],
)
def test_error_codes(provider, fake, code, expected):
    body = meta.error_body(code, f"(#{code}) something", "details")
    fake.script(Scripted(400, body))
    with pytest.raises(expected) as raised:
        provider.send(message(text="oi"))
    assert raised.type is expected
    assert raised.value.code == str(code)
    assert raised.value.raw == body


@pytest.mark.parametrize(("code", "down"), [(368, True), (131031, True), (133010, True), (190, False), (132001, False)])
def test_a_number_blocked_locked_or_unregistered_is_the_senders_fault_not_the_services(provider, fake, code, down):
    fake.script(Scripted(400, meta.error_body(code, f"(#{code}) something")))
    with pytest.raises(ProviderConfigurationError) as raised:
        provider.send(message(text="oi"))
    assert raised.value.sender_down is down  # a pool then pauses that member and sends through another


def test_the_code_wins_over_the_http_status(provider, fake):
    fake.script(Scripted(500, meta.error_body(131047, "(#131047) Re-engagement message")))
    with pytest.raises(PermanentProviderError):
        provider.send(message(text="oi"))


def test_the_pair_rate_limit_says_it_is_this_recipient_only(provider, fake):
    fake.script(
        Scripted(400, meta.error_body(131056, "(#131056) (Business Account, Consumer Account) pair rate limit hit"))
    )
    with pytest.raises(TransientProviderError) as raised:
        provider.send(message(text="oi"))
    assert "only this recipient" in str(raised.value)


def test_a_throughput_limit_keeps_retry_after(provider, fake):
    fake.script(Scripted(400, meta.error_body(130429, "(#130429) Rate limit hit"), {"Retry-After": "12"}))
    with pytest.raises(TransientProviderError) as raised:
        provider.send(message(text="oi"))
    assert raised.value.retry_after == 12


@pytest.mark.parametrize(
    ("status", "expected"),
    [(429, TransientProviderError), (503, TransientProviderError), (404, PermanentProviderError)],
)
def test_without_a_known_code_the_http_status_decides(provider, fake, status, expected):
    fake.script(Scripted(status, meta.error_body(999999, "something new")))
    with pytest.raises(expected) as raised:
        provider.send(message(text="oi"))
    assert raised.type is expected
    assert raised.value.code == "999999"


def test_an_undeliverable_recipient_is_permanent(provider, fake):
    fake.undeliverable.add(RECIPIENT)
    with pytest.raises(PermanentProviderError) as raised:
        provider.send(message(text="oi"))
    assert raised.value.code == "131026"


def test_a_success_without_a_message_id_is_transient(provider, fake):
    fake.script(Scripted(200, {"messaging_product": "whatsapp", "messages": []}))
    with pytest.raises(TransientProviderError) as raised:
        provider.send(message(text="oi"))
    assert raised.value.code == "no_message_id"
