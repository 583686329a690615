"""The Flask app factory: `create_app()` wires settings, the store and the blueprints together.

`wsgi.py` is the only place that calls it for serving; tests call it with their own settings.
"""

from __future__ import annotations

import contextlib
import re
import uuid

import redis
from flask import Flask, g, request
from flask.json.provider import DefaultJSONProvider

from dispatcher.api import (
    batches,
    cli,
    console,
    contacts,
    docs,
    health,
    instances,
    legacy,
    messages,
    metrics,
    pools,
    queue,
    retries,
    senders,
    webhooks,
)
from dispatcher.api.errors import register_error_handlers
from dispatcher.logs import configure_logging, request_id_var
from dispatcher.redis_health import warn_if_evicting, warn_if_records_bloat
from dispatcher.services import build_services
from dispatcher.settings import Settings, load_settings
from tasks.envelope import publishers

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_BODY_BYTES = 1024 * 1024  # a single message; bulk endpoints allow BULK_MAX_BYTES
BULK_ENDPOINTS = {"batches.send_bulk", "legacy.dispatch_bulk"}


class JsonAnswers(DefaultJSONProvider):
    """Answers as written: Portuguese texts readable (not `\\u00e1`), fields in the order the views give them."""

    ensure_ascii = False
    sort_keys = False


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    app = Flask("dispatcher")
    # Werkzeug merges `//` with a 308 that keeps the method: `DELETE /v1/instances//logout` (an empty name)
    # would be sent on to `DELETE /v1/instances/logout`, deleting an instance named `logout`.
    app.url_map.merge_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json = JsonAnswers(app)

    services = build_services(settings, publishers(settings.queue_name))
    app.extensions["dispatcher"] = services

    @app.before_request
    def _body_limit():
        if request.endpoint in BULK_ENDPOINTS:
            request.max_content_length = settings.bulk_max_bytes

    @app.before_request
    def _request_id():
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        request_id_var.set(g.request_id)

    @app.after_request
    def _answer_headers(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        # Answers carry messages' numbers and statuses: no browser sniffs them into something else, and no
        # cache between the caller and us keeps a copy.
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    register_error_handlers(app, not_found_answers=legacy.NOT_FOUND_ANSWERS)
    routes = (health, metrics, messages, retries, batches, queue, senders, pools, contacts, webhooks, instances, docs)
    for module in routes:
        app.register_blueprint(module.blueprint)
    legacy.register(app)
    console.setup(app, settings)
    app.extensions["openapi"] = docs.build_spec(app)
    cli.register(app)
    with contextlib.suppress(redis.RedisError):  # Redis down at start: the API still starts; /health/ready says 503
        warn_if_evicting(services.store.redis)
        warn_if_records_bloat(services.store.redis)
    return app
