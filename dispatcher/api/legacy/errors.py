"""The legacy API's error shape, `{"success": false, "message": ...}` beside our `code` and `field`, and its 404."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from marshmallow import Schema, fields

from dispatcher.api.errors import ApiError, contact_refused, over_quota
from dispatcher.contacts import ContactRefused
from dispatcher.quotas import QuotaExceeded


class LegacyErrorSchema(Schema):
    """The legacy API's error shape, answered by the `/api/v1` routes, with our `code` and `field` beside it."""

    success = fields.Boolean(required=True, metadata={"enum": [False]})
    message = fields.String(required=True)
    code = fields.String()
    field = fields.String()
    evolution = fields.Raw(metadata={"description": "Evolution API's own error answer, relayed"})


def legacy_error(error: ApiError):
    """The legacy API's error shape, keeping our machine-readable keys beside it."""
    body = {key: value for key, value in error.body.items() if key != "error"}
    return jsonify({"success": False, "message": error.body["error"], **body}), error.status, error.headers


def legacy_over_quota(error: QuotaExceeded):
    return legacy_error(over_quota(error))


def legacy_contact_refused(error: ContactRefused):
    return legacy_error(contact_refused(error))


def legacy_too_large(_error):
    """A body over the limit, refused while the view reads it, answers in the legacy shape like every error."""
    return legacy_error(ApiError(413, "Request body too large", "body_too_large"))


def answer_in_legacy_shape(blueprint: Blueprint) -> None:
    """Every error of `blueprint`'s routes in the legacy shape."""
    blueprint.register_error_handler(ApiError, legacy_error)
    blueprint.register_error_handler(QuotaExceeded, legacy_over_quota)
    blueprint.register_error_handler(ContactRefused, legacy_contact_refused)
    blueprint.register_error_handler(413, legacy_too_large)


def not_found_answer():
    """The legacy API's answer to an unknown route under /api/v1."""
    url = request.full_path.rstrip("?")
    return jsonify({"success": False, "message": f"Rota não encontrada: {request.method} {url}"}), 404
