"""Each view's entry in `/openapi.json`, declared beside its route with `@documented`, and made into an
OpenAPI operation here.

A view says only what the code cannot: its answers, its body's schema and its query parameters. The rest
comes from what the route already is: the summary and the description from its docstring (first paragraph,
then the rest), the path parameters from its URL rule, its security from the auth decorator that wraps it
(`accepted_keys`, dispatcher/api/auth.py), and the answers every operation of its kind gives (401, 403 and
429 behind a key, 413 with a body, the error body of every error) from `with_common_answers`.
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass

from marshmallow import Schema

# The two security schemes, and the kind of key (auth.py's `accepted_keys`) each one is.
ACCOUNT_KEY = {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "a key of API_KEY"}
SECURITY_SCHEMES = {
    "ApiKey": ACCOUNT_KEY,
    "OperatorKey": {**ACCOUNT_KEY, "description": "a key of ADMIN_API_KEY"},
}
SCHEME_OF_KEY = {"account": "ApiKey", "operator": "OperatorKey"}
_PATH_PARAMETER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")  # `<name>` or `<converter:name>` in a Flask rule

# A body or answer schema: a marshmallow schema (a reference to its component), or an OpenAPI Schema Object
# (which may itself name marshmallow schemas, as in `{"oneOf": [A, B]}`).
SchemaLike = type[Schema] | dict


@dataclass(frozen=True)
class Answer:
    """An answer with a body; an answer given as a bare description has none, or, from 400 on, the error body."""

    description: str
    schema: SchemaLike
    media_type: str = "application/json"


@dataclass(frozen=True)
class Operation:
    """What `@documented` records on a view (`view.operation`)."""

    summary: str
    description: str
    answers: Mapping[int, str | Answer]
    body: SchemaLike | None = None
    body_media_type: str = "application/json"
    query: tuple[dict, ...] = ()


def documented(
    answers: Mapping[int, str | Answer],
    *,
    body: SchemaLike | None = None,
    body_media_type: str = "application/json",
    query: tuple[dict, ...] = (),
):
    """Put the view in `/openapi.json`, with these answers (status code: description, or an `Answer`), this
    body and these query parameters (see `query`). Its docstring's first paragraph is the summary, the rest
    the description, so write it for the API's readers."""

    def record(view):
        summary, _, description = inspect.cleandoc(view.__doc__ or "").partition("\n\n")
        view.operation = Operation(
            summary=_one_line(summary).removesuffix("."),
            description="\n\n".join(_one_line(paragraph) for paragraph in description.split("\n\n") if paragraph),
            answers=answers,
            body=body,
            body_media_type=body_media_type,
            query=query,
        )
        return view

    return record


def _one_line(paragraph: str) -> str:
    return " ".join(paragraph.split())


def query(name: str, description: str = "", *, required: bool = False, type: str = "string", **schema) -> dict:
    """A query parameter: its JSON schema is `type` with `schema`'s keywords (enum, format, default, ...)."""
    parameter: dict[str, object] = {"name": name, "in": "query", "schema": {"type": type, **schema}}
    if required:
        parameter["required"] = True
    if description:
        parameter["description"] = description
    return parameter


def paging(default: int, maximum: int) -> tuple[dict, dict]:
    """The `limit` and `cursor` of a paged list (`int_arg("limit", default, 1, maximum)` in the view)."""
    return (
        query("limit", type="integer", default=default, minimum=1, maximum=maximum),
        query("cursor", "next_cursor of the previous page"),
    )


def operation(view, rule: str, error_schema: SchemaLike) -> dict | None:
    """The OpenAPI operation of a view served at `rule` (a Flask rule), or None for a view not `@documented`.
    `error_schema` is the body of its error answers."""
    record: Operation | None = getattr(view, "operation", None)
    if record is None:
        return None
    result: dict = {"summary": record.summary}
    if record.description:
        result["description"] = record.description
    security: list[dict[str, list]] = [{SCHEME_OF_KEY[kind]: []} for kind in getattr(view, "accepted_keys", ())]
    if security:
        result["security"] = security
    in_path = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAMETER.findall(rule)
    ]
    if in_path or record.query:
        result["parameters"] = [*in_path, *record.query]
    if record.body is not None:
        result["requestBody"] = {"required": True, "content": {record.body_media_type: {"schema": record.body}}}
    result["responses"] = {code: _answer(answer) for code, answer in record.answers.items()}
    # A copy: apispec resolves the schemas in place, and the record is built once for every app.
    return with_common_answers(copy.deepcopy(result), error_schema)


def _answer(answer: str | Answer) -> dict:
    if isinstance(answer, str):
        return {"description": answer}
    return {"description": answer.description, "content": {answer.media_type: {"schema": answer.schema}}}


def with_common_answers(operation: dict, error_schema: SchemaLike) -> dict:
    """Add the answers every operation of its kind can give, so no view can forget them.

    Any view behind a key (dispatcher/api/auth.py) answers 401, 403 when the key's role does not fit the
    route, and 429 over the account's request rate; any view reading a body answers 413 past the body
    limit (Flask's MAX_CONTENT_LENGTH, before the view runs). Every error answer is JSON in the shape
    errors.py makes (`error_schema`), so an error documented without a body gets that body.
    """
    responses = operation["responses"]
    if operation.get("security"):
        common = {
            401: "`Missing X-API-Key header` or `Invalid API Key`",
            403: "`operator_only` (an account's key on an operator route) or `account_only` (an operator's key "
            "on an account's route)",
            429: "`rate_limited` or `daily_quota_exceeded`: the account's quota; see Retry-After",
        }
        for code, description in common.items():
            responses.setdefault(code, {"description": description})
    if operation.get("requestBody"):
        responses.setdefault(413, {"description": "Request body too large"})
    for code, answer in responses.items():
        if code >= 400 and "content" not in answer:
            answer["content"] = {"application/json": {"schema": error_schema}}
    return operation
