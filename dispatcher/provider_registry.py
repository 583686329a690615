"""Every provider this service can send through, each declared once: its settings and how they are read,
how it is built from them, its default pace per sender, and its webhook adapter.

`dispatcher.settings` reads the settings of the enabled providers and every adapter's secrets from these
declarations, `dispatcher.provider_setup` builds the providers with them, `dispatcher.api.webhooks` serves
each adapter at /v1/webhooks/<name>. A new provider is one more entry in PROVIDERS
(docs/adding-a-provider.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dispatcher.names import INSTANCE_NAME_RULE, instance_name_problem, is_instance_name, sender_name_problem
from dispatcher.settings_reader import Reader, SettingsError
from providers import MockProvider, Provider
from providers.evolution import EvolutionProvider
from providers.evolution_inbound import EvolutionWebhook
from providers.inbound import InboundAdapter
from providers.meta import MetaProvider
from providers.meta_inbound import MetaWebhook
from providers.twilio import TwilioProvider
from providers.twilio_inbound import TwilioWebhook
from providers.webhook import WebhookProvider

Pacing = tuple[float, int, float]  # messages per second (0: not paced), burst, jitter (± share of each gap)


@dataclass(frozen=True)
class Shared:
    """The settings every provider's reader may depend on, read before any of them."""

    read_timeout: float  # PROVIDER_READ_TIMEOUT, seconds
    public_base_url: str  # PUBLIC_BASE_URL, "" when unset
    call_delay_ms: int  # WORKER_API_CALL_DELAY


@dataclass(frozen=True)
class ProviderDeclaration:
    """One provider, all the service knows of it.

    `read` reads its settings (only when it is enabled: WHATSAPP_PROVIDER(S)), raising SettingsError naming the
    variable; `build` makes the provider from them and the HTTP options every provider shares (`connect_timeout`,
    `read_timeout`, `pool_size`); `pacing` is its default pace per sender, which SENDER_RATE_/BURST_/JITTER_<NAME>
    override; `inbound` its webhook adapter, if it sends any; `sender_problem` what keeps a name from being
    one of its senders (a request's `sender`, a sender route's path), or None; `session_window` whether WhatsApp
    enforces its 24-hour customer-service window on it (free text only within 24 hours of the contact's last
    message: the Business Platform's providers, not a WhatsApp Web bridge).
    """

    name: str
    read: Callable[[Reader, Shared], Any]
    build: Callable[[Any, dict[str, float]], Provider]
    pacing: Callable[[Shared], Pacing]
    inbound: type[InboundAdapter] | None = None
    sender_problem: Callable[[str], str | None] = sender_name_problem
    session_window: bool = False


def fixed(rate: float, burst: int, jitter: float = 0.0) -> Callable[[Shared], Pacing]:
    return lambda shared: (rate, burst, jitter)


UNPACED = fixed(0.0, 1)


# --- mock ---


@dataclass(frozen=True)
class MockSettings:
    latency_ms: int
    failure_rate: float


def _mock(read: Reader, shared: Shared) -> MockSettings:
    return MockSettings(read.integer("MOCK_LATENCY_MS", 100), read.fraction("MOCK_FAILURE_RATE", 0.0))


MOCK = ProviderDeclaration(
    name="mock",
    read=_mock,
    build=lambda mock, http: MockProvider(latency_ms=mock.latency_ms, failure_rate=mock.failure_rate),
    pacing=UNPACED,
)


# --- evolution ---


@dataclass(frozen=True)
class EvolutionSettings:
    api_url: str
    api_key: str
    instances: tuple[str, ...]
    typing_delay_ms: int


def _evolution(read: Reader, shared: Shared) -> EvolutionSettings:
    why = " when the evolution provider is enabled"
    typing_delay_ms = read.integer("EVOLUTION_TYPING_DELAY_MS", 0, maximum=60_000)
    if typing_delay_ms / 1000 >= shared.read_timeout:
        # Evolution answers the send only after "typing" that long: the call would always time out, and
        # every message would be sent again on retry.
        raise SettingsError(
            f"EVOLUTION_TYPING_DELAY_MS ({typing_delay_ms}) must be shorter than PROVIDER_READ_TIMEOUT "
            f"({shared.read_timeout:g} s), which Evolution's answer waits behind"
        )
    instances = read.names("EVOLUTION_INSTANCE", " instance" + why)
    for instance in instances:
        if not is_instance_name(instance):
            # Each one becomes a segment of Evolution's URL paths and a sender a request may name.
            raise SettingsError(f"EVOLUTION_INSTANCE must hold instance names ({INSTANCE_NAME_RULE}); got {instance!r}")
    return EvolutionSettings(
        api_url=read.url("EVOLUTION_API_URL", required=True, why=why),
        api_key=read.required("EVOLUTION_API_KEY", why),
        instances=instances,
        typing_delay_ms=typing_delay_ms,
    )


def _evolution_pacing(shared: Shared) -> Pacing:
    """An Evolution (Baileys) number sends one message per WORKER_API_CALL_DELAY, without bursts and never at a
    constant rhythm (±50 %)."""
    return (1000 / shared.call_delay_ms if shared.call_delay_ms else 0.0, 1, 0.5)


EVOLUTION = ProviderDeclaration(
    name="evolution",
    read=_evolution,
    build=lambda evolution, http: EvolutionProvider(
        evolution.api_url, evolution.api_key, evolution.instances, typing_delay_ms=evolution.typing_delay_ms, **http
    ),
    pacing=_evolution_pacing,
    inbound=EvolutionWebhook,
    sender_problem=instance_name_problem,  # each one is a segment of Evolution's URL paths
)


# --- twilio ---


@dataclass(frozen=True)
class TwilioSettings:
    api_base_url: str
    account_sid: str
    username: str  # the Account SID, or an API key SID
    password: str  # the Auth Token, or the API key's secret
    senders: tuple[str, ...]  # whatsapp From numbers (+E.164) and/or a Messaging Service SID (MG...)
    status_callback_url: str  # empty unless PUBLIC_BASE_URL is set


def _twilio(read: Reader, shared: Shared) -> TwilioSettings:
    why = " when the twilio provider is enabled"
    account_sid = read.required("TWILIO_ACCOUNT_SID", why)
    if not re.fullmatch(r"AC[0-9a-fA-F]{32}", account_sid):
        raise SettingsError("TWILIO_ACCOUNT_SID must look like AC followed by 32 hex digits")
    key_sid, key_secret = read.raw("TWILIO_API_KEY_SID"), read.raw("TWILIO_API_KEY_SECRET")
    if key_sid or key_secret:
        if not (key_sid and key_secret):
            raise SettingsError("TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET must be set together")
        username, password = key_sid, key_secret
    else:
        username, password = account_sid, read.required("TWILIO_AUTH_TOKEN", " (or TWILIO_API_KEY_SID/SECRET)" + why)
    numbers = tuple(n.strip() for n in (read.raw("TWILIO_WHATSAPP_FROM") or "").split(",") if n.strip())
    for number in numbers:
        if not re.fullmatch(r"\+[1-9]\d{6,14}", number.removeprefix("whatsapp:")):
            raise SettingsError(f"TWILIO_WHATSAPP_FROM must hold E.164 numbers such as +14155238886; got {number!r}")
    service = read.raw("TWILIO_MESSAGING_SERVICE_SID")
    if service and not re.fullmatch(r"MG[0-9a-fA-F]{32}", service):
        raise SettingsError("TWILIO_MESSAGING_SERVICE_SID must look like MG followed by 32 hex digits")
    senders = tuple(n.removeprefix("whatsapp:") for n in numbers) + ((service,) if service else ())
    if not senders:
        raise SettingsError("TWILIO_WHATSAPP_FROM or TWILIO_MESSAGING_SERVICE_SID must be set" + why)
    return TwilioSettings(
        api_base_url=read.url("TWILIO_API_BASE_URL", required=False) or "https://api.twilio.com",
        account_sid=account_sid,
        username=username,
        password=password,
        senders=senders,
        status_callback_url=f"{shared.public_base_url}/v1/webhooks/twilio" if shared.public_base_url else "",
    )


TWILIO = ProviderDeclaration(
    name="twilio",
    read=_twilio,
    build=lambda twilio, http: TwilioProvider(
        twilio.api_base_url,
        twilio.account_sid,
        (twilio.username, twilio.password),
        twilio.senders,
        status_callback=twilio.status_callback_url,
        **http,
    ),
    pacing=fixed(10.0, 10),  # Twilio queues above ~10/s per sender
    inbound=TwilioWebhook,
    session_window=True,
)


# --- meta ---


@dataclass(frozen=True)
class MetaSettings:
    api_base_url: str
    api_version: str
    access_token: str
    phone_number_ids: tuple[str, ...]


def _meta(read: Reader, shared: Shared) -> MetaSettings:
    why = " when the meta provider is enabled"
    version = read.text("META_API_VERSION", "v23.0")
    if not re.fullmatch(r"v\d+\.\d+", version):
        raise SettingsError(f"META_API_VERSION must look like v23.0; got {version!r}")
    ids = read.names("META_PHONE_NUMBER_ID", " phone-number id" + why)
    for phone_number_id in ids:
        if not phone_number_id.isdigit():
            raise SettingsError(f"META_PHONE_NUMBER_ID must hold numeric ids; got {phone_number_id!r}")
    return MetaSettings(
        api_base_url=read.url("META_API_BASE_URL", required=False) or "https://graph.facebook.com",
        api_version=version,
        access_token=read.required("META_ACCESS_TOKEN", why),
        phone_number_ids=ids,
    )


META = ProviderDeclaration(
    name="meta",
    read=_meta,
    build=lambda meta, http: MetaProvider(
        meta.api_base_url, meta.api_version, meta.access_token, meta.phone_number_ids, **http
    ),
    pacing=fixed(80.0, 80),  # Meta allows 80/s per number
    inbound=MetaWebhook,
    session_window=True,
)


# --- webhook (a bridge: n8n, Make, a gateway of your own) ---


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    secret: str
    secret_header: str


def _webhook(read: Reader, shared: Shared) -> WebhookSettings:
    why = " when the webhook provider is enabled"
    return WebhookSettings(
        url=read.url("WEBHOOK_PROVIDER_URL", required=True, why=why),
        secret=read.required("WEBHOOK_PROVIDER_SECRET", why),
        secret_header=read.text("WEBHOOK_PROVIDER_SECRET_HEADER", "X-Dispatcher-Secret"),
    )


WEBHOOK = ProviderDeclaration(
    name="webhook",
    read=_webhook,
    build=lambda webhook, http: WebhookProvider(webhook.url, webhook.secret, webhook.secret_header, **http),
    pacing=UNPACED,
)


PROVIDERS: dict[str, ProviderDeclaration] = {p.name: p for p in (MOCK, EVOLUTION, TWILIO, META, WEBHOOK)}
