"""The operators' console at /console: campaigns, senders and pools, failed messages, dead callbacks, opt-outs.

Server-rendered (Flask templates: no build step, no script). Behind the operator key, as the operators' API
routes are (dispatcher/api/auth.py): a login form takes the key once and sets a signed session cookie
(HttpOnly, SameSite=Strict, Secure in production, path /console). The cookie holds no key: it is signed with
a secret that follows from the operators' keys, so a change of those keys ends every session, as do logout and
SESSION_HOURS. Every button is a form POST that carries the session's CSRF token, and the pages cannot be
framed. Every action goes through the services the API and the celery CLI use. A page shows contacts' numbers
masked, and never a message's text.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
from dataclasses import asdict
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, session, url_for

from dispatcher import statuses
from dispatcher.api import context
from dispatcher.api.auth import identify
from dispatcher.api.batches import batch_view
from dispatcher.failed_messages import Cursor, FailedFilter
from dispatcher.message_rules import InvalidInput
from dispatcher.settings import Settings
from providers.base import mask_phone

log = logging.getLogger(__name__)
blueprint = Blueprint("console", __name__, url_prefix="/console", template_folder="templates")
SESSION_HOURS = 12
SHOWN = 50  # rows a page lists
REFRESH_SECONDS = 3  # while a campaign runs, its page reloads itself this often
BATCH_ACTIONS = ("pause", "resume", "cancel")
# The batch states each button moves from (statuses.BATCH_MOVES), so a page offers only what would work.
BATCH_BUTTONS = {
    "pause": statuses.batch_sources(statuses.PAUSED),
    "resume": (statuses.PAUSED,),
    "cancel": statuses.batch_sources(statuses.CANCELED),
}
PAUSED_BY_OPERATOR = "paused by an operator"  # as the API's POST /v1/senders/<provider>/<sender>/pause says


def operator_keys(settings: Settings) -> tuple[str, ...]:
    """The keys that open the console: ADMIN_API_KEY's, or in development without one, API_KEY's."""
    if settings.api_keys_act_as_operator:
        return tuple(api_key.key for api_key in settings.api_keys)
    return settings.admin_api_keys


def setup(app: Flask, settings: Settings) -> None:
    """The session cookie's settings, and the console's routes. The cookie's signing key follows from the
    operators' keys, so there is no new secret to keep, and a change of operator keys ends every session."""
    keys = "\n".join(sorted(operator_keys(settings))).encode()
    app.secret_key = hmac.new(b"dispatcher console session", keys, hashlib.sha256).hexdigest()
    app.config.update(
        SESSION_COOKIE_NAME="dispatcher_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=settings.environment == "production",
        SESSION_COOKIE_PATH="/console",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
    )
    app.register_blueprint(blueprint)


def _login_page(status: int, error: str = ""):
    return render_template("console/login.html", error=error), status


def page(view):
    """A page for a signed-in operator; anyone else gets the login form, 401."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if session.get("operator") is not True:
            return _login_page(401)
        return view(*args, **kwargs)

    return wrapper


def button(view):
    """A button's POST: from a signed-in operator (else the login form, 401), with the session's CSRF token (else
    400 and nothing done). The view flashes what it did and the browser goes back to the page it came from."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if session.get("operator") is not True:
            return _login_page(401, "Sign in with an operator key (ADMIN_API_KEY).")
        if not hmac.compare_digest(request.form.get("csrf", ""), session.get("csrf", "")):
            message = "That form was stale or not the console's own: nothing was done. Try again from the console."
            return render_template("console/message.html", message=message), 400
        flash(view(*args, **kwargs))
        return redirect(_back(), 303)

    return wrapper


def _back() -> str:
    """Where a button's form came from (a path of the console's own), else the campaigns."""
    back = request.form.get("back", "")
    return back if back.startswith("/console") else url_for("console.campaigns")


def _render(template: str, **values):
    return render_template(f"console/{template}", csrf=session["csrf"], here=request.path, **values)


@blueprint.after_request
def _no_framing(response):
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# --- signing in and out ---


@blueprint.get("/login")
def login_form():
    return _login_page(200)


@blueprint.post("/login")
def login():
    caller = identify(request.form.get("key", ""), context.services().settings)
    if caller is None:
        log.warning("console: sign-in refused, not a key", extra={"remote": request.remote_addr})
        return _login_page(401, "That key is not valid.")
    if not caller.operator:
        log.warning("console: sign-in refused, an account's key", extra={"account": caller.account})
        return _login_page(403, "That key is an account's: the console needs an operator key (ADMIN_API_KEY).")
    log.info("console: an operator signed in", extra={"remote": request.remote_addr})
    session.clear()
    session.permanent = True
    session["operator"] = True
    session["csrf"] = secrets.token_urlsafe(32)
    return redirect(url_for("console.campaigns"), 303)


@blueprint.post("/logout")
def logout():
    if session.get("operator") is True and hmac.compare_digest(request.form.get("csrf", ""), session.get("csrf", "")):
        session.clear()
    return redirect(url_for("console.login_form"), 303)


# --- campaigns ---


@blueprint.get("")
@page
def campaigns():
    rows = []
    for batch_id, batch in context.services().store.recent_batches(SHOWN):
        view = batch_view(batch_id, batch)
        view["account"] = batch.get("account", "")
        view["actions"] = [action for action in BATCH_ACTIONS if batch["state"] in BATCH_BUTTONS[action]]
        rows.append(view)
    running = any(row["state"] == statuses.RUNNING for row in rows)
    return _render("campaigns.html", campaigns=rows, refresh=REFRESH_SECONDS if running else None)


@blueprint.post("/batches/<batch_id>/<action>")
@button
def batch_button(batch_id: str, action: str) -> str:
    if action not in BATCH_ACTIONS:
        abort(404)
    services = context.services()
    if services.store.batch(batch_id) is None:
        return f"No batch {batch_id}."
    if action == "pause":
        outcome = services.messages.pause_batch(batch_id)
    elif action == "resume":
        outcome = services.messages.resume_batch(batch_id)
    else:
        outcome, _ = services.messages.cancel_batch(batch_id)
    if outcome != "ok":
        return f"{batch_id}: cannot {action} a batch that is {outcome}."
    return f"{batch_id}: {action} done."


# --- senders and pools ---


@blueprint.get("/senders")
@page
def senders():
    services = context.services()
    configured = {name: provider.senders for name, provider in services.catalog.providers.items()}
    registry = services.senders
    paces = [asdict(pace) for pace in registry.get_many(registry.known(configured))]
    pools = [asdict(services.pools.view(pool)) for name in services.pools.names() if (pool := services.pools.get(name))]
    return _render("senders.html", senders=paces, pools=pools)


@blueprint.post("/senders/<provider>/<sender>/<action>")
@button
def sender_button(provider: str, sender: str, action: str) -> str:
    services = context.services()
    if provider not in services.catalog.providers:
        return f"No provider {provider}."
    try:
        services.catalog.check_sender(provider, sender)  # the API's rule for a sender's name
    except InvalidInput:
        return f"No sender {sender} of {provider}."
    if action == "pause":
        services.senders.pause(provider, sender, PAUSED_BY_OPERATOR)
        return f"{provider} {sender}: paused; its messages are held until it is resumed."
    if action == "resume":
        _, released = services.senders.resume(provider, sender)
        return f"{provider} {sender}: resumed; {released} held messages go on."
    abort(404)


# --- failed messages ---


@blueprint.get("/failed")
@page
def failed():
    services = context.services()
    cursor = request.args.get("cursor")
    try:
        start = Cursor.parse(cursor) if cursor else None
    except ValueError:
        start = None
    ids, next_cursor = services.failed.page(None, FailedFilter(), SHOWN, start)
    rows = []
    for message in services.store.get_many(ids):
        if message is None:
            continue
        error = message.last_error or {}
        rows.append(
            {
                "message_id": message.message_id,
                "failed_at": message.updated_at,
                "provider": message.provider,
                "recipient": mask_phone(message.recipient),
                "batch_id": message.batch_id,
                "code": error.get("code", ""),
                "reason": error.get("message", ""),
            }
        )
    return _render("failed.html", messages=rows, next_cursor=str(next_cursor) if next_cursor else None)


@blueprint.post("/messages/<message_id>/retry")
@button
def retry_button(message_id: str) -> str:
    services = context.services()
    grace = services.settings.queued_republish_after_seconds
    outcome = services.failed.retry(message_id, services.messages.task_for, grace)
    return f"{message_id}: queued again." if outcome == "ok" else f"{message_id}: not retried ({outcome})."


# --- dead callbacks ---


@blueprint.get("/callbacks")
@page
def callbacks():
    records, _ = context.services().outbox.dead_page(0, SHOWN)
    rows = [
        {
            "delivery_id": record["event"]["event_id"],
            "type": record["event"].get("type"),
            "message_id": record["event"].get("message_id"),
            "host": urlsplit(record["url"]).hostname,  # not the whole URL: it may carry a token
            "attempts": record["attempts"],
            "last_error": record.get("last_error"),
            "died_at": record.get("died_at"),
        }
        for record in records
    ]
    return _render("callbacks.html", deliveries=rows)


@blueprint.post("/callbacks/<delivery_id>/resend")
@button
def resend_button(delivery_id: str) -> str:
    if context.services().outbox.revive(delivery_id) is None:
        return f"No dead delivery {delivery_id}."
    return f"{delivery_id}: queued again, at the end of its chain."


# --- opt-outs ---


@blueprint.get("/opt-outs")
@page
def opt_outs():
    accounts = sorted({api_key.account for api_key in context.services().settings.api_keys})
    asked = request.args.get("account", "")
    shown = asked if asked in accounts else accounts[0]
    entries, _ = context.services().contacts.page(shown, 0, SHOWN)
    rows = [{**asdict(entry), "recipient_phone": mask_phone(entry.recipient_phone)} for entry in entries]
    return _render("opt_outs.html", accounts=accounts, account=shown, opt_outs=rows)
