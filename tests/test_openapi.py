"""`/openapi.json` as built from each view's `@documented` (dispatcher/api/openapi.py): it lists every route but
the few left out on purpose, and its operations are valid OpenAPI. tests/test_fuzz.py proves the answers match it."""

from __future__ import annotations

from apispec_webframeworks.flask import FlaskPlugin
from openapi_spec_validator import OpenAPIV30SpecValidator

# Routes not in the spec, each for its reason.
UNDOCUMENTED = {
    "/openapi.json",  # the spec itself
    "/docs",  # the spec, for people
    "/static/<path:filename>",  # Flask's own; nothing is served there
    "/api/v1/health",  # the legacy API's copy of /health
    # The legacy API's instance routes, relaying to Evolution as /v1/instances (which is documented) does.
    "/api/v1/instances/",
    "/api/v1/instances/<name>/connect",
    "/api/v1/instances/<name>/status",
    "/api/v1/instances/<name>/logout",
    "/api/v1/instances/<name>",
}


def test_every_route_is_documented_but_those_left_out_on_purpose(client):
    paths = client.get("/openapi.json").json["paths"]
    missing = {
        rule.rule
        for rule in client.application.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
        if method.lower() not in paths.get(FlaskPlugin.flaskpath2openapi(rule.rule), {})
        and not rule.rule.startswith("/console")  # the operators' console: pages for people, not an API
    }
    assert missing == UNDOCUMENTED


def test_the_operations_are_valid_openapi(client):
    """Every path, parameter, body and answer is a valid OpenAPI 3.0 object. The component schemas are left to
    apispec, which writes them from the marshmallow schemas: their `pattern`s are Python's regular expressions
    (`\\Z`), which the validator's ECMA check refuses."""
    spec = client.get("/openapi.json").json
    spec["components"]["schemas"] = {name: {"type": "object"} for name in spec["components"]["schemas"]}
    assert [error.message for error in OpenAPIV30SpecValidator(spec).iter_errors()] == []


def test_an_operation_is_described_by_its_view(client):
    """The summary and description come from the view's docstring, the path parameters from its URL rule, and
    the security from its auth decorator."""
    spec = client.get("/openapi.json").json
    send = spec["paths"]["/v1/messages/send"]["post"]
    assert send["summary"] == "Queue one message (the reach-town contract)"
    assert send["description"].startswith("Validates, records and queues the message, then answers at once;")
    sender = spec["paths"]["/v1/senders/{provider}/{sender}"]
    assert [parameter["name"] for parameter in sender["put"]["parameters"]] == ["provider", "sender"]
    assert sender["put"]["security"] == [{"OperatorKey": []}]  # require_operator
    assert sender["get"]["security"] == [{"ApiKey": []}, {"OperatorKey": []}]  # require_any_key
    assert "security" not in spec["paths"]["/health"]["get"]
