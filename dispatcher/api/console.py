"""The operators' console at /console: every campaign at a glance, paused, resumed or canceled with a button.

Server-rendered (Flask templates: no build step, no script). Behind the operator key, as the operators' API
routes are (dispatcher/api/auth.py): a login form takes the key once and sets a signed session cookie
(HttpOnly, SameSite=Strict, Secure in production, path /console). The cookie holds no key: it is signed with
a secret that follows from the operators' keys, so a change of those keys ends every session, as do logout and
SESSION_HOURS. Every button is a form POST that carries the session's CSRF token, and the pages cannot be
framed. Every action goes through the services the API uses (dispatcher/messages.py). A page shows no phone
number and no message text.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, session, url_for

from dispatcher import statuses
from dispatcher.api import context
from dispatcher.api.auth import identify
from dispatcher.api.batches import batch_view
from dispatcher.settings import Settings

blueprint = Blueprint("console", __name__, url_prefix="/console", template_folder="templates")
SESSION_HOURS = 12
CAMPAIGNS_SHOWN = 50
REFRESH_SECONDS = 3  # while a campaign runs, the page reloads itself this often
ACTIONS = ("pause", "resume", "cancel")
# The batch states each button moves from (statuses.BATCH_MOVES), so a page offers only what would work.
BUTTONS = {
    "pause": statuses.batch_sources(statuses.PAUSED),
    "resume": (statuses.PAUSED,),
    "cancel": statuses.batch_sources(statuses.CANCELED),
}


def operator_keys(settings: Settings) -> tuple[str, ...]:
    """The keys that open the console: ADMIN_API_KEY's, or in development without one, API_KEY's."""
    if settings.api_keys_act_as_operator:
        return tuple(api_key.key for api_key in settings.api_keys)
    return settings.admin_api_keys


def setup(app: Flask, settings: Settings) -> None:
    """The session cookie's settings. Its signing key follows from the operators' keys, so no new secret is to be
    kept, and a change of operator keys ends every session."""
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


def _signed_in() -> bool:
    return session.get("operator") is True


def _login_page(status: int, error: str = ""):
    return render_template("console/login.html", error=error), status


def _form_refused():
    """None for a POST from the console's own page (signed in, with the session's CSRF token); else the answer."""
    if not _signed_in():
        return _login_page(401, "Sign in with an operator key (ADMIN_API_KEY).")
    if not hmac.compare_digest(request.form.get("csrf", ""), session.get("csrf", "")):
        message = "That form was stale or not the console's own: nothing was done. Try again from the console."
        return render_template("console/message.html", message=message), 400
    return None


@blueprint.after_request
def _no_framing(response):
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@blueprint.get("/login")
def login_form():
    return _login_page(200)


@blueprint.post("/login")
def login():
    caller = identify(request.form.get("key", ""), context.services().settings)
    if caller is None:
        return _login_page(401, "That key is not valid.")
    if not caller.operator:
        return _login_page(403, "That key is an account's: the console needs an operator key (ADMIN_API_KEY).")
    session.clear()
    session.permanent = True
    session["operator"] = True
    session["csrf"] = secrets.token_urlsafe(32)
    return redirect(url_for("console.campaigns"), 303)


@blueprint.post("/logout")
def logout():
    if (refused := _form_refused()) is not None:
        return refused
    session.clear()
    return redirect(url_for("console.login_form"), 303)


@blueprint.get("")
def campaigns():
    if not _signed_in():
        return _login_page(401)
    store = context.services().store
    rows = []
    for batch_id, batch in store.recent_batches(CAMPAIGNS_SHOWN):
        view = batch_view(batch_id, batch)
        view["account"] = batch.get("account", "")
        view["actions"] = [action for action in ACTIONS if batch["state"] in BUTTONS[action]]
        rows.append(view)
    running = any(row["state"] == statuses.RUNNING for row in rows)
    return render_template(
        "console/campaigns.html", campaigns=rows, refresh=REFRESH_SECONDS if running else None, csrf=session["csrf"]
    )


@blueprint.post("/batches/<batch_id>/<action>")
def control(batch_id: str, action: str):
    if (refused := _form_refused()) is not None:
        return refused
    if action not in ACTIONS:
        abort(404)
    services = context.services()
    if services.store.batch(batch_id) is None:
        flash(f"No batch {batch_id}.")
        return redirect(url_for("console.campaigns"), 303)
    if action == "pause":
        outcome = services.messages.pause_batch(batch_id)
    elif action == "resume":
        outcome = services.messages.resume_batch(batch_id)
    else:
        outcome, _ = services.messages.cancel_batch(batch_id)
    if outcome == "ok":
        flash(f"{batch_id}: {action} done.")
    else:
        flash(f"{batch_id}: cannot {action} a batch that is {outcome}.")
    return redirect(url_for("console.campaigns"), 303)
