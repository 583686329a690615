"""Turning a request body into validated data, or into a 400 that names the field.

The seed contract's texts come first: missing fields are listed as
`Missing required fields: a, b`, in the schema's order, exactly as reach-town expects.
"""

from __future__ import annotations

from flask import request
from marshmallow import Schema, ValidationError
from werkzeug.exceptions import BadRequest

from dispatcher.api.errors import ApiError
from dispatcher.api.schemas import MISSING


def json_object() -> dict:
    """The request's JSON object, or a 400 saying what is wrong with the body."""
    if not request.is_json:
        raise ApiError(400, "Content-Type must be application/json", "unsupported_content_type", field="Content-Type")
    try:
        data = request.get_json(silent=False)
    except BadRequest:
        raise ApiError(400, "Malformed JSON body", "malformed_json", field="body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The JSON body must be an object", "invalid_body", field="body")
    return data


def load(schema: Schema, data: dict) -> dict:
    """The schema's data, or a 400 naming the first field at fault."""
    try:
        return schema.load(data)
    except ValidationError as error:
        raise ApiError(400, **field_error(schema, error.normalized_messages())) from None


def field_error(schema: Schema, messages: dict) -> dict:
    """marshmallow's messages as one error: `error` text, machine `code`, the `field` at fault."""
    missing = [name for name in schema.fields if MISSING in messages.get(name, [])]
    if missing:
        return {
            "error": f"Missing required fields: {', '.join(missing)}",
            "code": "missing_fields",
            "field": missing[0],
            "fields": missing,
        }
    name = next(name for name in schema.fields if name in messages)
    problem = messages[name]
    text = problem[0] if isinstance(problem, list) else f"{name} is invalid"
    return {"error": text, "code": "invalid_field", "field": name}


def int_arg(name: str, default: int, minimum: int, maximum: int | None) -> int:
    """A whole-number query argument (a page size, a cursor), or a 400 naming it."""
    value = request.args.get(name)
    if value is None:
        return default
    if not value.isdigit() or int(value) < minimum or (maximum is not None and int(value) > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise ApiError(400, f"{name} must be a whole number, at least {minimum}{upper}", "invalid_field", field=name)
    return int(value)
