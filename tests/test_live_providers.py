"""One real message per provider, only when its credentials are in the environment.

Run with, for example:
    LIVE_RECIPIENT=+5564999998888 WHATSAPP_PROVIDER=evolution EVOLUTION_API_URL=... EVOLUTION_API_KEY=... \\
    EVOLUTION_INSTANCE=... .venv/bin/python -m pytest -m live tests/test_live_providers.py
Each test builds the provider from the environment exactly as the worker does, and sends one text.
"""

import os

import pytest

from dispatcher.provider_setup import build_provider
from dispatcher.settings import load_settings
from providers.base import OutboundMessage

pytestmark = pytest.mark.live

NEEDS = {
    "evolution": ("EVOLUTION_API_URL", "EVOLUTION_API_KEY", "EVOLUTION_INSTANCE"),
    "twilio": ("TWILIO_ACCOUNT_SID", "TWILIO_WHATSAPP_FROM"),
    "meta": ("META_ACCESS_TOKEN", "META_PHONE_NUMBER_ID"),
}


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_one_real_message(name):
    missing = [variable for variable in (*NEEDS[name], "LIVE_RECIPIENT") if not os.environ.get(variable)]
    if missing:
        pytest.skip(f"live {name} test needs {', '.join(missing)}")
    settings = load_settings(
        {
            **os.environ,
            "API_KEY": os.environ.get("API_KEY", "live"),
            "WHATSAPP_PROVIDER": name,
            "WHATSAPP_PROVIDERS": name,
        }
    )
    provider = build_provider(name, settings)
    result = provider.send(
        OutboundMessage("msg-live", os.environ["LIVE_RECIPIENT"], "WhatsApp Dispatcher live test", "live-test")
    )
    assert result.provider_message_id
