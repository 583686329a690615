"""API keys: the `X-API-Key` header, checked against every configured key in constant time."""

from __future__ import annotations

import functools
import hmac

from flask import current_app, g, request

from dispatcher.api.errors import ApiError
from dispatcher.messages import key_id


def _matches_any(candidate: str, keys: tuple[str, ...]) -> str | None:
    """The configured key equal to `candidate`, comparing with every key so timing reveals nothing."""
    found = None
    for key in keys:
        if hmac.compare_digest(candidate.encode(), key.encode()):
            found = key
    return found


def require_api_key(view):
    """Answer 401 with the seed contract's texts unless the request carries a valid key; sets `g.key_id`."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        candidate = request.headers.get("X-API-Key")
        if not candidate:
            raise ApiError(401, "Missing X-API-Key header", "missing_api_key")
        key = _matches_any(candidate, current_app.extensions["dispatcher"].settings.api_keys)
        if key is None:
            raise ApiError(401, "Invalid API Key", "invalid_api_key")
        g.key_id = key_id(key)
        return view(*args, **kwargs)

    return wrapper
