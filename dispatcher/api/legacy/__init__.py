"""The legacy API: the routes of the Fastify + BullMQ system this service replaces (`/api/v1/...`), kept for
its clients, on top of the same services as `/v1`, with its bodies, answers, error shape and 404.

Everything of it is in this package and `register` is its one line in the app factory: retiring it is
deleting the folder and that line.
"""

from __future__ import annotations

from flask import Flask

from dispatcher.api.legacy import instances, routes
from dispatcher.api.legacy.errors import not_found_answer

PREFIX = "/api/v1/"
NOT_FOUND_ANSWERS = {PREFIX: not_found_answer}  # the app's 404 under PREFIX, in the legacy shape


def register(app: Flask) -> None:
    app.register_blueprint(routes.blueprint)
    app.register_blueprint(instances.blueprint)
