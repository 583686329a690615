"""`/metrics` in Prometheus's text format, for dashboards and alerts.

Not public: a scrape needs `Authorization: Bearer <METRICS_TOKEN>` (compared in constant time), or,
when no METRICS_TOKEN is set, an API key. The numbers come from Redis (dispatcher/metrics.py), so any
web process answers the same.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from dispatcher.api import context
from dispatcher.api.auth import require_operator
from dispatcher.api.errors import ApiError
from dispatcher.api.openapi import Answer, documented
from dispatcher.metrics import DispatcherCollector

blueprint = Blueprint("metrics", __name__)


def _registry() -> CollectorRegistry:
    services = context.services()
    if "metrics_registry" not in current_app.extensions:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(DispatcherCollector(services.store, services.settings, services.pools))
        current_app.extensions["metrics_registry"] = registry
    return current_app.extensions["metrics_registry"]


def _scrape() -> Response:
    return Response(generate_latest(_registry()), mimetype=CONTENT_TYPE_LATEST)


@blueprint.get("/metrics")
@documented(
    answers={
        200: Answer("Prometheus text format", {"type": "string"}, "text/plain"),
        401: "No or wrong token",
        403: "`operator_only`: without METRICS_TOKEN, an account's key is not enough",
    }
)
def metrics():
    """Prometheus metrics (bearer METRICS_TOKEN, or an operator key when none is set)."""
    token = context.services().settings.metrics_token
    if not token:
        return require_operator(_scrape)()
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not given:
        raise ApiError(401, "Missing Authorization: Bearer <METRICS_TOKEN>", "missing_token")
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise ApiError(401, "Invalid metrics token", "invalid_token")
    return _scrape()
