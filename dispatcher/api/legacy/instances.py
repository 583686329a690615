"""The legacy API's instance routes (`/api/v1/instances`), on top of ours (dispatcher/api/instances.py): the
same calls to Evolution, in the legacy bodies and error shape. Operator routes, as ours are."""

from __future__ import annotations

from flask import Blueprint, jsonify
from marshmallow import RAISE, Schema, ValidationError, fields

from dispatcher.api.auth import require_operator
from dispatcher.api.errors import ApiError
from dispatcher.api.instances import checked_name, evolution_instances, name_validator, relay
from dispatcher.api.legacy import errors as legacy_errors
from dispatcher.api.request_input import json_object

blueprint = Blueprint("legacy_instances", __name__, url_prefix="/api/v1/instances")
legacy_errors.answer_in_legacy_shape(blueprint)


class _CreateSchema(Schema):
    class Meta:
        unknown = RAISE

    instanceName = fields.String(required=True, validate=name_validator())
    token = fields.String()
    qrcode = fields.Boolean(load_default=True)


@blueprint.get("/")
@require_operator
def list_instances():
    return relay(evolution_instances().list)


@blueprint.post("/")
@require_operator
def create_instance():
    raw = json_object()
    try:
        data = _CreateSchema().load(raw)
    except ValidationError as error:
        field, problem = next(iter(error.normalized_messages().items()))
        raise ApiError(400, f"body/{field} {problem[0]}", "invalid_field", field=field) from None
    return relay(
        evolution_instances().create,
        data["instanceName"],
        "WHATSAPP-BAILEYS",
        data.get("token", ""),
        data["qrcode"],
        "",
        success=201,
    )


@blueprint.get("/<name>/connect")
@require_operator
def connect_instance(name: str):
    return relay(evolution_instances().connect, checked_name(name, "params/name"))


@blueprint.get("/<name>/status")
@require_operator
def instance_status(name: str):
    status, answer = evolution_instances().state(checked_name(name, "params/name"))
    if status == 404:
        return jsonify({"state": "NOT_FOUND"})
    return relay(lambda: (status, answer))


@blueprint.delete("/<name>/logout")
@require_operator
def logout_instance(name: str):
    return relay(evolution_instances().logout, checked_name(name, "params/name"))


@blueprint.delete("/<name>")
@require_operator
def delete_instance(name: str):
    return relay(evolution_instances().delete, checked_name(name, "params/name"))
