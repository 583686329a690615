"""Asking the workers over the broker, for the API's queue status (the API never runs tasks itself)."""

from __future__ import annotations

import functools

from celery import Celery
from kombu.exceptions import OperationalError

from dispatcher.settings import redis_ssl_options


@functools.cache
def _control_app(broker_url: str) -> Celery:
    """A bare app for pings, with the workers' TLS choice for the broker (as in celeryconfig.py)."""
    return Celery("dispatcher-control", broker=broker_url, broker_use_ssl=redis_ssl_options(broker_url) or False)


def workers_online(broker_url: str, timeout: float = 0.5) -> list[str]:
    """The names of the workers that answer a ping within `timeout` seconds (none when the broker is down)."""
    try:
        replies = _control_app(broker_url).control.ping(timeout=timeout) or []
    except (OSError, OperationalError):  # kombu wraps some failures, a refused TLS certificate among them
        return []
    return sorted(name for reply in replies for name in reply)
