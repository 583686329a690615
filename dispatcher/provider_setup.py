"""The providers this service may send through, built from the settings by their declarations
(dispatcher/provider_registry.py, which knows which environment variables configure which provider).

The API asks the catalog whether a message can be sent as asked (provider, sender, kind), so an
impossible request is a 400 naming the field, never a failure inside a worker; the workers ask it
for the provider that sends.
"""

from __future__ import annotations

from dispatcher.message_rules import InvalidInput
from dispatcher.provider_registry import PROVIDERS
from dispatcher.settings import Settings
from providers import Provider


def build_provider(name: str, settings: Settings) -> Provider:
    """Provider `name`, built by its declaration (dispatcher/provider_registry.py) from its settings."""
    http = {
        "connect_timeout": settings.provider_connect_timeout,
        "read_timeout": settings.provider_read_timeout,
        "pool_size": max(10, settings.worker_concurrency),
    }
    if name not in PROVIDERS:
        raise ValueError(f"unknown provider {name}")
    return PROVIDERS[name].build(settings.provider_settings[name], http)


class ProviderCatalog:
    """Every enabled provider, by name; the first is the default (WHATSAPP_PROVIDER)."""

    def __init__(self, settings: Settings):
        self.default = settings.whatsapp_provider
        self.providers = {name: build_provider(name, settings) for name in settings.whatsapp_providers}

    def get(self, name: str) -> Provider:
        return self.providers[name]

    def resolve(self, name: str | None, sender: str | None, kind: str, sender_field: str = "sender") -> tuple[str, str]:
        """The provider and sender a message will use, or InvalidInput naming the field that cannot be
        (`sender_field`: what the request calls its sender, the legacy API's `instanceName`)."""
        name = name or self.default
        provider = self.providers.get(name)
        if provider is None:
            raise InvalidInput(
                f"provider must be one of {', '.join(self.providers)}; got {name!r}", "unknown_provider", "provider"
            )
        if kind not in provider.kinds:
            raise InvalidInput(f"the {name} provider cannot send {kind} messages", "unsupported_kind", kind)
        if sender:
            self.check_sender(name, sender, sender_field)
        return name, sender or provider.default_sender

    def check_sender(self, name: str, sender: str, field: str = "sender") -> None:
        """InvalidInput unless `sender` has the form of provider `name`'s senders (`invalid_field`) and is one
        of those configured, when the provider has a list (`unknown_sender`)."""
        if (problem := PROVIDERS[name].sender_problem(sender)) is not None:
            raise InvalidInput(f"{field} {problem}", "invalid_field", field)
        known = self.providers[name].senders
        if known and sender not in known:
            raise InvalidInput(
                f"{field} must be one of {', '.join(known)} for {name}; got {sender!r}", "unknown_sender", field
            )
