"""Turning a request body into validated data, or into a 400 that names the field.

The reach-town contract's texts come first: missing fields are listed as
`Missing required fields: a, b`, in the schema's order, exactly as reach-town expects.
"""

from __future__ import annotations

import re

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
    except RecursionError:  # the parser recurses: thousands of `[` exhaust the stack before we can count them
        raise ApiError(400, _TEXTS["too_deep"], "too_deep", field="body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The JSON body must be an object", "invalid_body", field="body")
    refuse_unsafe_json(data)
    return data


MAX_JSON_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


def json_problem(value: object) -> tuple[str, str] | None:
    """What makes parsed JSON unsafe to accept, and where: None, or (code, the field's path).

    `invalid_unicode`: text holding an unpaired UTF-16 surrogate. JSON lets a body write `"\\ud800"` and
    Python's parser keeps it, but UTF-8 cannot encode it: storing it in Redis, or echoing it in an answer,
    would fail with a 500 once the request was half done. A valid pair (`"\\ud83d\\ude00"`, an emoji)
    parses to one character and passes.

    `too_deep`: more than MAX_JSON_DEPTH levels of arrays and objects. No body of ours needs a dozen; near
    Python's recursion limit, encoding the data again (for Redis, for a provider) would fail with a 500.

    The walk is iterative, so no depth can exhaust the stack here. The path reads `messages.3.external_id`;
    a bad key is reported at its parent, `body` at the top.
    """
    if type(value) is str:  # parsed JSON holds exact dicts, lists and strs: `type() is` is the fast test
        return ("invalid_unicode", "body") if not value.isascii() and _SURROGATE.search(value) else None
    stack: list[tuple[dict | list, tuple | None, int]] = []
    if type(value) is dict or type(value) is list:
        stack.append((value, None, 0))
    while stack:  # (container, (parent trail, key), depth)
        item, trail, depth = stack.pop()
        if depth >= MAX_JSON_DEPTH:
            return "too_deep", _path(trail)
        for key, inner in item.items() if type(item) is dict else enumerate(item):
            kind = type(inner)
            if kind is str:
                if not inner.isascii() and _SURROGATE.search(inner):
                    return "invalid_unicode", _path((trail, key))
            elif kind is dict or kind is list:
                stack.append((inner, (trail, key), depth + 1))
            if type(key) is str and not key.isascii() and _SURROGATE.search(key):
                return "invalid_unicode", _path(trail)
    return None


def _path(trail: tuple | None) -> str:
    keys = []
    while trail is not None:
        trail, key = trail
        keys.append(str(key))
    return ".".join(reversed(keys)) or "body"


_TEXTS = {
    "invalid_unicode": "Text must be valid Unicode; this field holds an unpaired surrogate such as \\ud800",
    "too_deep": f"The JSON body is nested too deeply: at most {MAX_JSON_DEPTH} levels of arrays and objects",
}


def refuse_unsafe_json(data: object) -> None:
    """A 400 naming the field at fault when json_problem finds one."""
    problem = json_problem(data)
    if problem is not None:
        code, where = problem
        raise ApiError(400, _TEXTS[code], code, field=where)


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
    name = next((name for name in schema.fields if name in messages), None)
    if name is None:  # a key the schema does not know, refused by a schema that refuses unknown keys
        name = next(iter(messages))
        return {"error": f"Unknown field: {name}", "code": "unknown_field", "field": name}
    problem, path = messages[name], name
    while isinstance(problem, dict) and problem:  # a nested object (media, template): say which field inside
        inner, problem = next(iter(problem.items()))
        path = path if inner == "_schema" else f"{path}.{inner}"
    text = problem[0] if isinstance(problem, list) and problem else f"{name} is invalid"
    if path != name and not text.startswith(path):
        text = f"{path}: {text}"
    return {"error": text, "code": "invalid_field", "field": name}


def int_arg(name: str, default: int, minimum: int, maximum: int | None) -> int:
    """A whole-number query argument (a page size, a cursor), or a 400 naming it."""
    value = request.args.get(name)
    if value is None:
        return default
    # ASCII only: "³".isdigit() is true but int() refuses it; and no more than 18 digits, as int() refuses
    # a text of over 4,300 digits and no page size or cursor of ours needs more.
    whole = value.isascii() and value.isdigit() and len(value) <= 18
    if not whole or int(value) < minimum or (maximum is not None and int(value) > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise ApiError(400, f"{name} must be a whole number, at least {minimum}{upper}", "invalid_field", field=name)
    return int(value)
