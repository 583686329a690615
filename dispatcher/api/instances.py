"""Evolution API instances (the WhatsApp numbers it connects): list, create, connect by QR code or
pairing code, connection status, logout, delete.

Two faces over the same calls: `/v1/instances` in our style, and the legacy API's `/api/v1/instances` with
its bodies and error shape. Both relay Evolution's own answers; both need the API key and the
evolution provider enabled. An instance created here sends once it is listed in EVOLUTION_INSTANCE.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from dispatcher.api import context
from dispatcher.api.auth import require_operator
from dispatcher.api.errors import ApiError
from dispatcher.api.openapi import documented, query
from dispatcher.api.request_input import json_object, load
from dispatcher.names import INSTANCE_NAME_RULE, is_instance_name
from providers import TransientProviderError
from providers.evolution import EvolutionInstances, EvolutionProvider

blueprint = Blueprint("instances", __name__)


def name_validator(prefix: str = ""):
    """A marshmallow validator for an instance name in a body: the one rule every door applies."""

    def check(value: str) -> None:
        if not is_instance_name(value):
            raise ValidationError(f"{prefix}must be {INSTANCE_NAME_RULE}")

    return check


def checked_name(name: str, shown: str = "name") -> str:
    """An instance name from the path, checked before it becomes a segment of Evolution's URL: a 400 naming it
    otherwise (`shown` is how the error text names it: the legacy API's Fastify said `params/name`)."""
    if not is_instance_name(name):
        raise ApiError(400, f"{shown} must be {INSTANCE_NAME_RULE}", "invalid_field", field="name")
    return name


class CreateInstanceSchema(Schema):
    """POST /v1/instances."""

    class Meta:
        unknown = EXCLUDE
        ordered = True

    instance_name = fields.String(
        required=True, validate=name_validator("instance_name "), metadata={"example": "loja-1"}
    )
    integration = fields.String(
        load_default="WHATSAPP-BAILEYS", validate=validate.OneOf(EvolutionInstances.INTEGRATIONS)
    )
    token = fields.String(metadata={"description": "The instance's own API key; Evolution makes one if absent."})
    qrcode = fields.Boolean(load_default=True, metadata={"description": "Answer with a QR code to scan (Baileys)."})
    number = fields.String(metadata={"description": "The owner's number, digits with country code."})


# What every instance route may answer besides its own.
NOT_ENABLED = "The evolution provider is not enabled"
BAD_NAME = "An invalid instance name, or the evolution provider is not enabled"
NO_INSTANCE = "No such instance"
EVOLUTION_FAILED = "Evolution API unreachable, or it answered an error of its own (5xx)"


def evolution_instances() -> EvolutionInstances:
    provider = context.services().catalog.providers.get("evolution")
    if not isinstance(provider, EvolutionProvider):
        raise ApiError(
            400,
            "The evolution provider is not enabled (WHATSAPP_PROVIDER / WHATSAPP_PROVIDERS)",
            "provider_not_enabled",
            field="provider",
        )
    return EvolutionInstances(provider)


def relay(call, *args: Any, success: int | None = None):
    """Evolution's answer as ours: its body and status on success, an error naming its status otherwise."""
    try:
        status, answer = call(*args)
    except TransientProviderError as error:
        raise ApiError(502, f"Evolution API unreachable: {error}", "evolution_unreachable") from None
    if status >= 400:
        details = answer.get("response", {}).get("message") if isinstance(answer, dict) else answer
        text = "; ".join(map(str, details)) if isinstance(details, list) else str(details)
        raise ApiError(
            status if status < 500 else 502, f"Evolution API: {text}", f"evolution_{status}", evolution=answer
        )
    return jsonify(answer), success or status


# --- /v1/instances ---


@blueprint.get("/v1/instances")
@documented(answers={200: "The instances", 400: NOT_ENABLED, 502: EVOLUTION_FAILED})
@require_operator
def list_instances():
    """List Evolution API instances (Evolution's fetchInstances answer)."""
    return relay(evolution_instances().list)


@blueprint.post("/v1/instances")
@documented(
    body=CreateInstanceSchema,
    answers={
        201: "Created: Evolution's answer, with `qrcode.base64` (a PNG data URL) to scan",
        400: "A bad body, or the evolution provider is not enabled",
        403: "The name is taken",
        502: EVOLUTION_FAILED,
    },
)
@require_operator
def create_instance():
    """Create an Evolution API instance (answers with its QR code)."""
    data = load(CreateInstanceSchema(), json_object())
    return relay(
        evolution_instances().create,
        data["instance_name"],
        data["integration"],
        data.get("token", ""),
        data["qrcode"],
        data.get("number", ""),
    )


@blueprint.get("/v1/instances/<name>/connect")
@documented(
    query=(query("number", "digits with country code, for a pairing code"),),
    answers={
        200: "`{pairingCode, code, base64, count}`, or the instance's state when already open",
        400: BAD_NAME,
        404: NO_INSTANCE,
        502: EVOLUTION_FAILED,
    },
)
@require_operator
def connect_instance(name: str):
    """A QR code (base64 PNG) to scan, or a pairing code with ?number=."""
    return relay(evolution_instances().connect, checked_name(name), request.args.get("number", ""))


@blueprint.get("/v1/instances/<name>/status")
@documented(
    answers={200: "`{instance: {instanceName, state}}`", 400: BAD_NAME, 404: NO_INSTANCE, 502: EVOLUTION_FAILED}
)
@require_operator
def instance_status(name: str):
    """Connection state: open, connecting or close."""
    return relay(evolution_instances().state, checked_name(name))


@blueprint.delete("/v1/instances/<name>/logout")
@documented(
    answers={
        200: "Logged out",
        400: "Not connected, an invalid instance name, or the evolution provider is not enabled",
        404: NO_INSTANCE,
        502: EVOLUTION_FAILED,
    }
)
@require_operator
def logout_instance(name: str):
    """Log out (the number must be connected again with a new QR code)."""
    return relay(evolution_instances().logout, checked_name(name))


@blueprint.delete("/v1/instances/<name>")
@documented(answers={200: "Deleted", 400: BAD_NAME, 404: NO_INSTANCE, 502: EVOLUTION_FAILED})
@require_operator
def delete_instance(name: str):
    """Delete an instance."""
    return relay(evolution_instances().delete, checked_name(name))
