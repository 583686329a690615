"""`/openapi.json`, generated from the marshmallow schemas and each view's `@documented` (dispatcher/api/openapi.py),
and `/docs` for people.

The docs page is rendered here from the same spec, with no script or stylesheet from elsewhere, so
it works on a closed network and in tests.
"""

from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec_webframeworks.flask import FlaskPlugin
from flask import Blueprint, Flask, current_app, jsonify, render_template_string

from dispatcher import callback_events
from dispatcher.api import instances, legacy, pools, schemas, senders
from dispatcher.api.legacy import routes as legacy_routes
from dispatcher.api.legacy.errors import LegacyErrorSchema
from dispatcher.api.openapi import SECURITY_SCHEMES, operation

blueprint = Blueprint("docs", __name__)

_SCHEMAS = (
    schemas.SendMessageSchema,
    schemas.SendAnswerSchema,
    schemas.MessageSchema,
    schemas.ErrorSchema,
    LegacyErrorSchema,
    schemas.HealthSchema,
    schemas.ReadinessSchema,
    schemas.BulkRowSchema,
    schemas.BulkRequestSchema,
    schemas.RowResultSchema,
    schemas.BulkAnswerSchema,
    schemas.BatchSchema,
    schemas.BatchMessagesSchema,
    schemas.QueueStatusSchema,
    legacy_routes.LegacySingleSendSchema,
    legacy_routes.LegacyBulkSendSchema,
    instances.CreateInstanceSchema,
    senders.SenderPaceSchema,
    pools.PoolSchema,
)


def build_spec(app: Flask) -> dict:
    spec = APISpec(
        title="WhatsApp Dispatcher",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "Queue WhatsApp messages, one by one or in bulk, and follow each one's status."},
    )
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    for schema in _SCHEMAS:
        spec.components.schema(schema.__name__, schema=schema)
    for rule in app.url_map.iter_rules():
        error_schema = LegacyErrorSchema if rule.rule.startswith(legacy.PREFIX) else schemas.ErrorSchema
        described = operation(app.view_functions[rule.endpoint], rule.rule, error_schema)
        if described:
            method = next(m for m in rule.methods or () if m not in ("HEAD", "OPTIONS")).lower()
            spec.path(path=FlaskPlugin.flaskpath2openapi(rule.rule), operations={method: described})
    publish_callback_events(spec)
    return spec.to_dict()


# --- The events we POST to callback URLs (dispatcher/callback_events.py) ---


def publish_callback_events(spec: APISpec) -> None:
    """The callback events as components, and as `x-webhooks` (OpenAPI 3.1's `webhooks`, which 3.0 lacks): one
    POST each, to the callback_url, signed (X-Dispatcher-Signature) and retried until a 2xx."""
    for schema in dict.fromkeys(callback_events.EVENTS.values()):  # each schema once, in the table's order
        spec.components.schema(schema.__name__, schema=schema)
    webhooks = {}
    for event_type, schema in callback_events.EVENTS.items():
        body = {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema.__name__}"}}}}
        webhooks[event_type] = {
            "post": {
                "summary": (schema.__doc__ or "").strip(),
                "requestBody": {"required": True, **body},
                "responses": {"2XX": {"description": "delivered; anything else is retried with backoff"}},
            }
        }
    spec.options["x-webhooks"] = webhooks


@blueprint.get("/openapi.json")
def openapi():
    return jsonify(current_app.extensions["openapi"])


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ spec.info.title }} API</title>
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h2{border-bottom:1px solid #ddd;padding-bottom:.3rem}
.op{margin:1.5rem 0;padding:1rem;border:1px solid #e3e3e3;border-radius:6px}
.method{font-weight:bold;text-transform:uppercase;padding:.1rem .5rem;border-radius:4px;background:#e8f0fe}
code,pre{background:#f6f8fa;padding:.1rem .3rem;border-radius:3px}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
</style></head><body>
{% macro fields(ref) %}{% set schema = spec.components.schemas[ref] %}
<table><tr><th>field</th><th>type</th><th>required</th><th>description</th></tr>
{% for name, prop in schema.properties.items() %}
<tr><td><code>{{ name }}</code></td><td>{{ prop.type }}</td>
<td>{{ 'yes' if name in schema.get('required', []) else 'no' }}</td>
<td>{{ prop.description }}{% if prop.example %} e.g. <code>{{ prop.example }}</code>{% endif %}</td></tr>
{% endfor %}</table>{% endmacro %}
<h1>{{ spec.info.title }} API</h1>
<p>{{ spec.info.description }} Machine-readable: <a href="/openapi.json">/openapi.json</a>.
Authenticated endpoints need the <code>X-API-Key</code> header.</p>
{% for path, operations in spec.paths.items() %}{% for method, op in operations.items() %}
<div class="op" id="{{ method }}-{{ path }}">
<h2><span class="method">{{ method }}</span> <code>{{ path }}</code></h2>
<p><strong>{{ op.summary }}</strong>{% if op.security %} (X-API-Key){% endif %}</p>
{% if op.description %}<p>{{ op.description }}</p>{% endif %}
{% set body = op.get('requestBody', {}).get('content', {}).get('application/json') %}
{% if body and '$ref' in body.schema %}
{% set ref = body.schema['$ref'].split('/')[-1] %}
<h3>Body: {{ ref }}</h3>{{ fields(ref) }}{% endif %}
<h3>Answers</h3><ul>{% for code, answer in op.responses.items() %}
<li><code>{{ code }}</code> {{ answer.description }}</li>{% endfor %}</ul>
</div>{% endfor %}{% endfor %}
<h1 id="callback-events">Events we POST to your callback_url</h1>
<p>Signed (<code>X-Dispatcher-Signature</code>), in order per message, retried until your endpoint answers 2xx.</p>
{% for type, hook in spec['x-webhooks'].items() %}
{% set ref = hook.post.requestBody.content['application/json'].schema['$ref'].split('/')[-1] %}
<div class="op" id="event-{{ type }}">
<h2><code>{{ type }}</code></h2>
<p><strong>{{ hook.post.summary }}</strong></p>
{{ fields(ref) }}
</div>{% endfor %}
</body></html>"""


@blueprint.get("/docs")
def docs():
    return render_template_string(_PAGE, spec=current_app.extensions["openapi"])
