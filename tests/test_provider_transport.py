"""Provider calls at their transport edges: a total deadline however the answer trickles, a garbled 2xx."""

import time

import pytest

from providers import TransientProviderError
from providers.base import OutboundMessage
from providers.meta import MetaProvider
from tests.fakes import meta


@pytest.fixture
def fake(fake_meta):
    return fake_meta


def provider(fake, read_timeout: float) -> MetaProvider:
    return MetaProvider(
        fake.url,
        meta.VERSION,
        meta.ACCESS_TOKEN,
        (meta.PHONE_NUMBER_ID,),
        connect_timeout=0.5,
        read_timeout=read_timeout,
    )


def test_an_answer_trickling_past_the_deadline_is_cut_at_it(fake):
    fake.trickle_seconds = 5  # a few bytes every ~0.1 s: no single read ever waits 1 s
    began = time.monotonic()
    with pytest.raises(TransientProviderError) as raised:
        provider(fake, read_timeout=1).send(OutboundMessage("msg-1", "+5564999998888", text="Olá"))
    elapsed = time.monotonic() - began
    assert raised.value.code == "deadline"
    assert 1.4 <= elapsed < 2.5, elapsed  # connect 0.5 + read 1 = 1.5 s in all


def test_an_answer_trickling_within_the_deadline_is_read_whole(fake):
    fake.trickle_seconds = 1
    result = provider(fake, read_timeout=5).send(OutboundMessage("msg-1", "+5564999998888", text="Olá"))
    assert result.provider_message_id.startswith("wamid.")


def test_a_deadline_does_not_outlive_its_call(fake):
    """The pool's connection, reused by the next call after a quick one, is not cut by the first's deadline."""
    quick = provider(fake, read_timeout=0.5)
    quick.send(OutboundMessage("msg-1", "+5564999998888", text="Olá"))
    time.sleep(1.2)  # the first call's deadline (1 s) passes while nothing is in flight
    fake.trickle_seconds = 0.5
    assert quick.send(OutboundMessage("msg-2", "+5564999998888", text="Olá")).provider_message_id


def test_a_bridge_that_took_the_message_but_garbled_its_answer_is_not_asked_again():
    """A 2xx is the bridge taking the message: a body that is not JSON must not become a retry (a resend)."""
    from providers.webhook import WebhookProvider
    from tests.fakes import webhook

    bridge = webhook.FakeBridge().start()
    try:
        bridge.garbled = True
        provider = WebhookProvider(f"{bridge.url}/hook", webhook.SECRET)
        result = provider.send(OutboundMessage("msg-9", "+5564999998888", text="Olá", external_id="e-9"))
        assert result.provider_message_id == "msg-9"  # our own id: the bridge gave none we could read
        assert bridge.accepted["e-9"] == 1
    finally:
        bridge.stop()
