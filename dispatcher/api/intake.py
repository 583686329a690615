"""Turning a request into messages to accept: the route it asks for, and a bulk row as a message.

Shared by the send and bulk routes and by the legacy API's routes, so every door checks a provider, a
sender, a media URL, a callback URL and a row by the same rules.
"""

from __future__ import annotations

from marshmallow import ValidationError

from dispatcher.api.request_input import field_error
from dispatcher.api.schemas import EXTERNAL_ID_MAX, PHONE_MAX, BulkRowSchema
from dispatcher.message_rules import (
    InvalidInput,
    checked_body,
    checked_callback_url,
    checked_expires_at,
    checked_media_url,
    checked_recipient,
    checked_send_at,
    rendered,
)
from dispatcher.messages import Route, new_message
from dispatcher.services import Services
from dispatcher.settings import Settings
from dispatcher.store import NewMessage
from dispatcher.templates import Template
from providers.base import MEDIA, TEMPLATE, TEXT

_row_schema = BulkRowSchema()


def route_for(data: dict, services: Services, template: dict | None = None) -> Route:
    """The provider and sender (or the sender pool whose member is chosen at the claim), media, provider
    `template`, `fallback_template` (for a closed 24-hour window) and callback URL a request asks for, checked
    against what the chosen provider (every member of the pool) can do: an impossible request is refused here,
    not in a worker."""
    catalog = services.catalog
    media = data.get("media")
    kind = TEMPLATE if template else MEDIA if media else TEXT
    pool = data.get("pool")
    if pool is not None:
        provider, sender = "", ""
        members = services.pools.check_sendable(pool, kind, data).members
        candidates = tuple((member.provider, member.sender) for member in members)
    else:
        provider, sender = catalog.resolve(data.get("provider"), data.get("sender"), kind)
        candidates = ()
    if media:
        media = {
            "url": checked_media_url(media["url"], services.settings.callbacks.allowlist),
            "kind": media["type"],
            **{name: media[name] for name in ("caption", "mimetype", "filename") if media.get(name)},
        }
    callback_url = checked_callback_url(data.get("callback_url"), services.settings.callbacks)
    fallback = data.get("fallback_template")
    if fallback:
        for name in {name for name, _ in candidates} or {provider}:
            if TEMPLATE not in catalog.providers[name].kinds:
                raise InvalidInput(
                    f"the {name} provider cannot send templates", "unsupported_kind", "fallback_template"
                )
    return Route(provider, sender, media or None, template or None, callback_url, pool or "", fallback, candidates)


def timing(data: dict, settings: Settings) -> tuple[float | None, float | None]:
    """When a request's message may go (`send_at`) and when, still unsent, it expires (`valid_for` or
    `expires_at`, else MESSAGE_VALIDITY_SECONDS), as timestamps; InvalidInput naming the field that cannot be.
    One rule for the single send and the bulk request."""
    send_at = checked_send_at(data.get("send_at"), settings.message_retention_days)
    expires_at = checked_expires_at(
        settings.message_validity_seconds,
        settings.message_retention_days,
        valid_for=data.get("valid_for"),
        expires_at=data.get("expires_at"),
        send_at=send_at,
    )
    return send_at, expires_at


_ABSENT = object()
_SCALARS = (str, int, float, bool, type(None))


def load_row(raw: dict) -> dict:
    """A row as BulkRowSchema loads it. marshmallow is the rule; rows that plainly meet it skip it,
    because loading 10,000 rows through marshmallow costs a third of a bulk request's time.
    Anything unusual goes through marshmallow, which gives the exact error."""
    phone, external_id = raw.get("recipient_phone"), raw.get("external_id")
    body, variables = raw.get("message_body", _ABSENT), raw.get("variables", _ABSENT)
    if (
        type(phone) is str
        and 0 < len(phone) <= PHONE_MAX
        and type(external_id) is str
        and 0 < len(external_id) <= EXTERNAL_ID_MAX
        and (body is _ABSENT or type(body) is str)
        and (variables is _ABSENT or (type(variables) is dict and all(type(v) in _SCALARS for v in variables.values())))
    ):
        row: dict[str, object] = {"recipient_phone": phone, "external_id": external_id}
        if body is not _ABSENT:
            row["message_body"] = body
        if variables is not _ABSENT:
            row["variables"] = variables
        return row
    return _row_schema.load(raw)


def prepare_row(raw: object, template: Template | None, settings: Settings, route: Route, account: str) -> NewMessage:
    """One bulk row as `account`'s message ready to store, or InvalidInput naming what is wrong with it. The
    request's template comes parsed once (`Template(text)`), not once a row."""
    if not isinstance(raw, dict):
        raise InvalidInput("Each row must be a JSON object", "invalid_row", "messages")
    try:
        row = load_row(raw)
    except ValidationError as error:
        refusal = field_error(_row_schema, error.normalized_messages())
        raise InvalidInput(refusal["error"], refusal["code"], refusal["field"]) from None
    text: str
    if "message_body" in row:
        text = row["message_body"]
    elif template is not None:
        text = rendered(template, row.get("variables") or {})
    elif route.media:
        text = ""
    else:
        raise InvalidInput("Missing required fields: message_body (or a template)", "missing_fields", "message_body")
    body = checked_body(text, settings.message_body_max_chars, optional=bool(route.media))
    recipient = checked_recipient(row["recipient_phone"], settings.default_region)
    return new_message(account, row["external_id"], recipient, body, route)
