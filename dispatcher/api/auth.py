"""Who is calling: the `X-API-Key` header, checked in constant time against every configured key.

Three kinds of route (dispatcher/accounts.py says what keys and accounts are):
  `require_api_key`   acts for an account (sending, reading its messages): an API_KEY key;
  `require_operator`  changes or shows what every account shares (senders, instances, the whole queue):
                      an ADMIN_API_KEY key, or, in development without one, any API key;
  `require_any_key`   either, each seeing its own: an account its things, an operator everyone's.
Each sets `g.caller`; an account's requests also spend its request quota (dispatcher/quotas.py), but for a
single send (`quota_checked_at_accept`), whose create script spends it in the same step as the message. Each
also records on the view which keys it accepts (`accepted_keys`), from which /openapi.json states the
operation's security (dispatcher/api/openapi.py).
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app, g, request

from dispatcher.api.errors import ApiError
from dispatcher.settings import Settings


@dataclass(frozen=True)
class Caller:
    """A caller whose key matched: the account it acts for (None for an operator's own key), and whether it
    may use operator routes."""

    account: str | None
    operator: bool


def identify(candidate: str, settings: Settings) -> Caller | None:
    """The caller `candidate` names, or None; compares with every key so timing reveals nothing."""
    given = candidate.encode()
    account = None
    for api_key in settings.api_keys:
        if hmac.compare_digest(given, api_key.key.encode()):
            account = api_key.account
    operator = False
    for key in settings.admin_api_keys:
        if hmac.compare_digest(given, key.encode()):
            operator = True
    if account is None and not operator:
        return None
    return Caller(account, operator or settings.api_keys_act_as_operator)


def _authenticate(spend_token: bool = True) -> Caller:
    """The request's caller, or 401 with the reach-town contract's texts."""
    candidate = request.headers.get("X-API-Key")
    if not candidate:
        raise ApiError(401, "Missing X-API-Key header", "missing_api_key")
    services = current_app.extensions["dispatcher"]
    caller = identify(candidate, services.settings)
    if caller is None:
        raise ApiError(401, "Invalid API Key", "invalid_api_key")
    if caller.account is not None and spend_token:
        services.quotas.take_request(caller.account)
    g.caller = caller
    return caller


def require_api_key(view):
    """The route acts for an account: an operator's own key gets 403 (it belongs to no account)."""

    spend_token = not getattr(view, "quota_checked_at_accept", False)

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if _authenticate(spend_token).account is None:
            raise ApiError(403, "This route acts for an account: use an API_KEY key, not ADMIN_API_KEY", "account_only")
        return view(*args, **kwargs)

    return _accepting(wrapper, ("account",))


def quota_checked_at_accept(view):
    """Mark a single send: its create script checks the account's quotas in the same step as the message, so
    the request makes no call of its own for them (a request refused before, by validation, spends none).
    Goes below `require_api_key`."""
    view.quota_checked_at_accept = True
    return view


def require_operator(view):
    """The route is for operators: an account's key gets 403."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not _authenticate().operator:
            raise ApiError(403, "This route is for operators: use an ADMIN_API_KEY key", "operator_only")
        return view(*args, **kwargs)

    return _accepting(wrapper, ("operator",))


def require_any_key(view):
    """Any valid key; the view shows an account its own things and an operator everyone's (`scope()`)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        _authenticate()
        return view(*args, **kwargs)

    return _accepting(wrapper, ("account", "operator"))


def account() -> str:
    """The account the request acts for (behind `require_api_key`)."""
    return g.caller.account


def scope() -> str | None:
    """Whose things a `require_any_key` view shows: None (everyone's) for an operator, else the account's."""
    return None if g.caller.operator else g.caller.account


def _accepting(wrapper: Callable, kinds: tuple[str, ...]) -> Callable:
    """Record on a route which keys it takes (`accepted_keys`): its security in /openapi.json
    (dispatcher/api/openapi.py) is read from there, so it cannot disagree with the check."""
    wrapper.accepted_keys = kinds  # type: ignore[attr-defined]
    return wrapper
