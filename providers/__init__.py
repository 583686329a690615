"""WhatsApp providers behind one contract (see `providers.base`)."""

from providers.base import (
    OutboundMessage,
    PermanentProviderError,
    Provider,
    ProviderConfigurationError,
    ProviderError,
    SendResult,
    TransientProviderError,
)
from providers.mock import MockProvider

__all__ = [
    "MockProvider",
    "OutboundMessage",
    "PermanentProviderError",
    "Provider",
    "ProviderConfigurationError",
    "ProviderError",
    "SendResult",
    "TransientProviderError",
]
