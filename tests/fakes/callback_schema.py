"""The callback events' published schemas (dispatcher/callback_events.py, as /openapi.json shows them), for the
fake receivers to check every event they are delivered against."""

from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from openapi_schema_validator import OAS30Validator

from dispatcher import callback_events
from dispatcher.api import docs


def _validators() -> dict[str, OAS30Validator]:
    spec = APISpec(title="callbacks", version="1", openapi_version="3.0.3", plugins=[MarshmallowPlugin()])
    docs.publish_callback_events(spec)
    components = spec.to_dict()["components"]
    return {
        event_type: OAS30Validator({"$ref": f"#/components/schemas/{schema.__name__}", "components": components})
        for event_type, schema in callback_events.EVENTS.items()
    }


_VALIDATORS = _validators()


def event_errors(event: object) -> list[str]:
    """Why `event` is not one of our callback events as published (nothing: it is)."""
    validator = _VALIDATORS.get(event.get("type")) if isinstance(event, dict) else None
    if validator is None:
        return [f"no published event type: {event!r}"]
    return [
        f"{event.get('type')} {list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(event)
    ]
