"""Liveness and readiness, without authentication, for load balancers and Heroku-style routers."""

from __future__ import annotations

import time

import redis
from flask import Blueprint, current_app, jsonify

from dispatcher.store import iso

blueprint = Blueprint("health", __name__)


@blueprint.get("/health")
def health():
    """The process is up.
    ---
    summary: Liveness (the seed contract)
    responses:
      200:
        description: Always, while the process runs
        content: {application/json: {schema: HealthSchema}}
    """
    return jsonify({"status": "ok", "timestamp": iso(time.time())})


@blueprint.get("/health/ready")
def ready():
    """The service can accept messages.
    ---
    summary: Readiness (Redis answers)
    responses:
      200:
        description: Redis answers
        content: {application/json: {schema: ReadinessSchema}}
      503:
        description: Redis does not answer
        content: {application/json: {schema: ReadinessSchema}}
    """
    try:
        current_app.extensions["dispatcher"].store.redis.ping()
    except redis.RedisError as error:
        return jsonify(
            {"status": "unavailable", "redis": "unreachable", "error": f"Redis is unreachable ({type(error).__name__})"}
        ), 503
    return jsonify({"status": "ok", "redis": "ok"})
