"""A fake Twilio REST API (2010-04-01): the Messages resource, as Twilio answers it for WhatsApp.

Every request is checked against Twilio's official OpenAPI spec (`twilio_api_v2010.json` in
PROVIDER_SPECS_DIR) when it is there, with openapi-core: a request the spec refuses is recorded as a
spec error and gets the 400 Twilio would give. The spec cannot say what WhatsApp adds (the
`whatsapp:` prefixes, a sender the account owns, something to send), so the fake checks that itself,
with Twilio's error codes.
"""

from __future__ import annotations

import email.utils
import functools
import json
import re
import uuid
from datetime import UTC, datetime

from flask import Flask, jsonify, request
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest

from tests.fakes.server import FakeServer, Scripted, specs_dir
from tests.provider_cases import ProviderCase

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-test-auth-token"
FROM = "+14155238886"
MESSAGING_SERVICE_SID = "MG" + "fedcba9876543210" * 2


@functools.cache
def _openapi() -> OpenAPI | None:
    folder = specs_dir()
    if folder is None:
        return None
    # Read as JSON: openapi-core's file loader is YAML, which refuses the spec's escaped emoji.
    return OpenAPI.from_dict(json.loads((folder / "twilio_api_v2010.json").read_text()))


def spec_available() -> bool:
    return _openapi() is not None


class _SentToTwilio(WerkzeugOpenAPIRequest):
    """The Flask request as openapi-core reads it, but addressed to the spec's server: the fake
    listens on 127.0.0.1, and openapi-core only finds the operation under the spec's own host."""

    host_url = "https://api.twilio.com"


def _spec_errors() -> list[str]:
    """What the spec refuses in the current request (its body is read here, before Flask parses the form)."""
    openapi = _openapi()
    if openapi is None:
        return []
    errors = []
    for error in openapi.iter_request_errors(_SentToTwilio(request)):
        details = getattr(error.__cause__, "schema_errors", ())
        errors += [detail.message for detail in details] or [str(error)]
    return errors


def error_body(status: int, code: int, message: str) -> dict:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def echo_error(status: int, code: int, message: str) -> Scripted:
    """An error whose message quotes the request's To, Body and ContentVariables, as Twilio's quote the To."""

    def body(sent_request) -> dict:
        form = sent_request.form
        quoted = ", ".join(f"{name}: {form[name]}" for name in ("To", "Body", "ContentVariables") if name in form)
        return error_body(status, code, f"{message} ({quoted})")

    return Scripted(status, body)


def _error(status: int, code: int, message: str) -> tuple:
    return jsonify(error_body(status, code, message)), status


class FakeTwilio(FakeServer):
    """State: the account's WhatsApp senders (`whatsapp:` numbers and Messaging Services), and the
    numbers Twilio finds invalid."""

    def __init__(self):
        self.senders = {f"whatsapp:{FROM}", MESSAGING_SERVICE_SID}
        self.invalid_numbers: set[str] = set()
        _openapi()  # loaded now (about a second): the first request must not wait for the spec
        app = Flask("fake-twilio")
        app.add_url_rule("/2010-04-01/Accounts/<account_sid>/Messages.json", view_func=self._create, methods=["POST"])
        super().__init__(app)

    def _create(self, account_sid: str):
        errors = _spec_errors()
        self.record(errors)
        if (scripted := self.scripted_answer()) is not None:
            return scripted
        auth = request.authorization
        if auth is None or (auth.username, auth.password) != (ACCOUNT_SID, AUTH_TOKEN):
            return _error(401, 20003, "Authenticate")
        if account_sid != ACCOUNT_SID:
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        if errors:
            return _error(400, 20001, "; ".join(errors))
        form = request.form
        to = form.get("To", "")
        if not re.fullmatch(r"whatsapp:\+[1-9]\d{6,14}", to) or to.removeprefix("whatsapp:") in self.invalid_numbers:
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        sender = form.get("From") or form.get("MessagingServiceSid")
        if sender is None:
            return _error(400, 21603, "A 'From' phone number is required.")
        if sender not in self.senders:
            return _error(400, 63007, "Twilio could not find a Channel with the specified From address")
        if not (form.get("Body") or form.get("MediaUrl") or form.get("ContentSid")):
            return _error(400, 21619, "A text message body or media urls must be specified.")
        sid = "SM" + uuid.uuid4().hex
        uri = f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json"
        now = email.utils.format_datetime(datetime.now(UTC))
        return jsonify(
            {
                "account_sid": account_sid,
                "api_version": "2010-04-01",
                "body": form.get("Body", ""),
                "date_created": now,
                "date_sent": None,
                "date_updated": now,
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "num_media": str(len(form.getlist("MediaUrl"))),
                "num_segments": "1",
                "price": None,
                "price_unit": "USD",
                "sid": sid,
                # A Messaging Service first accepts the message, then picks the number and queues it.
                "status": "queued" if form.get("From") else "accepted",
                "subresource_uris": {"media": uri.removesuffix(".json") + "/Media.json"},
                "to": to,
                "uri": uri,
            }
        ), 201


CASE = ProviderCase(
    name="twilio",
    start_fake=lambda: FakeTwilio().start(),
    env=lambda fake: {
        "WHATSAPP_PROVIDER": "twilio",
        "TWILIO_API_BASE_URL": fake.url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_WHATSAPP_FROM": FROM,
        # Twilio's webhooks are verified with the auth token, so its 24-hour window is enforced by default; these
        # contract tests send free text to contacts that never wrote (tests/test_contacts.py tests the window).
        "SESSION_WINDOW": "off",
    },
    transient=Scripted(500, error_body(500, 20500, "Internal Server Error")),
    permanent=Scripted(
        400, error_body(400, 21211, "The 'To' number whatsapp:+5564999998888 is not a valid phone number.")
    ),
    configuration=Scripted(401, error_body(401, 20003, "Authenticate")),
    spec_available=spec_available,
)
