"""Every error the API answers is JSON: `{"error": "<text>", "code": "<machine code>", "field"?: ...}`.

The `error` texts of the reach-town contract (reach-town matches on them) are kept exactly; `code` and
`field` are extra keys for machines. Nothing internal (stack traces, Redis addresses) is ever sent.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping

import redis
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from dispatcher.contacts import ContactRefused
from dispatcher.logs import request_id_var
from dispatcher.message_rules import InvalidInput
from dispatcher.quotas import QuotaExceeded

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answer: HTTP status, the human text, a machine code, and any extra keys (and headers)."""

    def __init__(self, status: int, error: str, code: str, headers: dict[str, str] | None = None, **extra):
        super().__init__(error)
        self.status = status
        self.headers = headers or {}
        self.body = {"error": error, "code": code, **extra}

    @classmethod
    def invalid(cls, invalid: InvalidInput, status: int = 400) -> ApiError:
        """A rule of the domain broken by the request: 400 (or `status`), naming its field."""
        return cls(status, str(invalid), invalid.body["code"], field=invalid.body["field"])


def over_quota(error: QuotaExceeded) -> ApiError:
    """A quota's refusal as an answer: 429, its code, and when to come back."""
    return ApiError(429, str(error), error.code, headers={"Retry-After": str(math.ceil(error.retry_after))})


# How /openapi.json describes the 422 of every route that sends.
CONTACT_REFUSED = (
    "A contact's rule refused it: `Recipient has opted out` (`opted_out`), `outside_session_window` (free text to "
    "a contact who has not written in 24 hours: send a template or a fallback_template), `contact_cap_reached`"
)


def contact_refused(error: ContactRefused) -> ApiError:
    """A contact's rule refusing a send (opted out, outside the 24-hour window, over its daily cap): 422."""
    return ApiError(422, str(error), error.code, field=error.field)


def register_error_handlers(app: Flask, not_found_answers: Mapping[str, Callable[[], ResponseReturnValue]]) -> None:
    """Every error as JSON. `not_found_answers` maps a path prefix to the 404 its routes answer in their own
    shape (the legacy API's, under /api/v1/); the app passes them in, so this module imports no blueprint."""

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        return jsonify(error.body), error.status, error.headers

    @app.errorhandler(QuotaExceeded)
    def _over_quota(error: QuotaExceeded):
        return _api_error(over_quota(error))

    @app.errorhandler(ContactRefused)
    def _contact_refused(error: ContactRefused):
        return _api_error(contact_refused(error))

    @app.errorhandler(redis.ConnectionError)
    @app.errorhandler(redis.TimeoutError)
    def _redis_down(error):
        log.error("Redis is unreachable: %s", error)
        body = {
            "error": "Service unavailable: the message store (Redis) is unreachable; "
            "retry the same request (a replay never sends twice)",
            "code": "redis_unavailable",
        }
        return jsonify(body), 503, {"Retry-After": "5"}

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        if error.code == 404:
            for prefix, answer in not_found_answers.items():
                if request.path.startswith(prefix):
                    return answer()
            return jsonify({"error": "Route not found", "code": "not_found"}), 404
        if error.code == 413:
            body = {"error": "Request body too large", "code": "body_too_large"}
            return jsonify(body), 413
        code = (error.name or "error").lower().replace(" ", "_")
        return jsonify({"error": error.description or error.name, "code": code}), error.code

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        log.exception("unexpected error")
        details = f"Unexpected error; quote request_id {request_id_var.get()} when reporting it"
        return jsonify({"error": "Internal server error", "details": details, "code": "internal"}), 500
