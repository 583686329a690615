"""Liveness and readiness, without authentication, for load balancers and Heroku-style routers."""

from __future__ import annotations

import logging
import time

import redis
from flask import Blueprint, jsonify, request

from dispatcher import worker_registry
from dispatcher.api import context
from dispatcher.api.auth import identify
from dispatcher.api.openapi import Answer, documented
from dispatcher.api.schemas import HealthSchema, ReadinessSchema
from dispatcher.times import iso

log = logging.getLogger(__name__)
blueprint = Blueprint("health", __name__)


@blueprint.get("/health")
@documented(answers={200: Answer("Always, while the process runs", HealthSchema)})
def health():
    """Liveness (the reach-town contract)."""
    return jsonify({"status": "ok", "timestamp": iso(time.time())})


@blueprint.get("/health/ready")
@documented(
    answers={
        200: Answer("Redis answers", ReadinessSchema),
        503: Answer("Redis does not answer", ReadinessSchema),
    }
)
def ready():
    """Readiness (Redis answers), with the workers seen and the queue's depth.

    200 whenever Redis answers, so a router keeps sending requests to this API even when no
    worker runs (messages are accepted and wait); `warning` then says that nothing consumes the queue.
    Open to probes, so it says how many workers it heard from; the workers' names (host names) only
    to an operator's key.
    """
    services = context.services()
    client = services.store.redis
    try:
        pipe = client.pipeline(transaction=False)
        pipe.ping()
        pipe.llen(services.settings.queue_name)
        _, depth = pipe.execute()
        workers = worker_registry.seen(client)
    except redis.RedisError as error:
        return jsonify(
            {"status": "unavailable", "redis": "unreachable", "error": f"Redis is unreachable ({type(error).__name__})"}
        ), 503
    answer = {"status": "ok", "redis": "ok", "workers": len(workers), "queue_depth": depth}
    caller = identify(request.headers.get("X-API-Key") or "", services.settings)
    if caller is not None and caller.operator:
        answer["workers_seen"] = sorted(workers)
    warning = worker_registry.no_consumer_warning(workers, services.settings.queue_name)
    if warning:
        answer["warning"] = warning
    return jsonify(answer)
