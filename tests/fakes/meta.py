"""A fake Meta WhatsApp Cloud API: `POST /{version}/{phone-number-id}/messages` as Graph answers it.

Every request is checked with openapi-core against Meta's official OpenAPI 3.1 spec
(`whatsapp_cloud_api_v23.0.yaml` in PROVIDER_SPECS_DIR) when it is there: path, headers, bearer
and body. A request the spec refuses gets Meta's 400 `(#100) Invalid parameter` and is recorded
as a spec error.

The spec needs two corrections in memory before it is usable (the file stays as published):
- it is not a valid OpenAPI document (an int response key, an unknown `components.parameterGroups`),
  so openapi-core's check of the spec itself is turned off;
- each message type is `allOf: [BaseMessageProperties, {additionalProperties: false, ...}]`, and
  `additionalProperties` only sees its own branch's properties, so `messaging_product`, `to` and
  `recipient_type` would be refused in every text or media message the real API accepts. The fake
  moves it to `unevaluatedProperties: false` on the message schema, which sees both branches: the
  meaning the authors intended, still refusing any unknown field.
"""

from __future__ import annotations

import base64
import functools
import json
import time
import uuid
from collections.abc import Callable

import yaml
from flask import Flask, Response, jsonify, request
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest

from tests.fakes.server import FakeServer, Scripted, specs_dir
from tests.provider_cases import ProviderCase

ACCESS_TOKEN = "EAAGmetaTestToken123"
PHONE_NUMBER_ID = "106540352242922"
VERSION = "v23.0"


@functools.cache
def _openapi() -> tuple[OpenAPI, str] | None:
    """The spec, corrected as the module docstring says, and its server URL; None without the spec."""
    folder = specs_dir()
    if folder is None:
        return None
    spec = yaml.load((folder / "whatsapp_cloud_api_v23.0.yaml").read_text(), Loader=yaml.CSafeLoader)
    for schema in spec["components"]["schemas"].values():
        for branch in schema.get("allOf", []):
            if branch.get("additionalProperties") is False:
                del branch["additionalProperties"]
                schema["unevaluatedProperties"] = False
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None)), spec["servers"][0]["url"]


def spec_available() -> bool:
    return _openapi() is not None


class _AtMetasHost(WerkzeugOpenAPIRequest):
    """The fake's request as if it had reached Meta's server, so the spec's server URL matches it."""

    def __init__(self, request, server_url: str):
        super().__init__(request)
        self.server_url = server_url

    @property
    def host_url(self) -> str:
        return self.server_url


def _spec_errors(openapi: OpenAPI, server_url: str) -> list[str]:
    """What the spec refuses in the current request."""
    errors = []
    for error in openapi.iter_request_errors(_AtMetasHost(request, server_url)):
        details = getattr(error.__cause__, "schema_errors", None)
        errors += [detail.message for detail in details] if details else [str(error)]
    return errors


def error_body(code: int, message: str, details: str = "", error_type: str = "OAuthException") -> dict:
    """A Graph API error body, as Meta sends it."""
    error = {"message": message, "type": error_type, "code": code, "fbtrace_id": "AbCdEfGhIjKlMnOp"}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": error}


def echo_error(status: int, code: int, message: str) -> Scripted:
    """An error whose `error_data.details` quotes the request, as Meta's do for parameters it refuses: the
    recipient as sent and as a wa_id, and the text (or the template with its parameters)."""

    def body(sent_request) -> dict:
        sent = sent_request.get_json(silent=True) or {}
        to = str(sent.get("to", ""))
        text = (sent.get("text") or {}).get("body") or json.dumps(sent.get("template"), ensure_ascii=False)
        wa_id = "".join(filter(str.isdigit, to))
        return error_body(code, message, f"Parameter 'to' {to} (wa_id {wa_id}) refused with text.body \"{text}\"")

    return Scripted(status, body)


def _error(status: int, *args, **kwargs) -> tuple:
    return jsonify(error_body(*args, **kwargs)), status


class FakeMeta(FakeServer):
    """State: the phone-number ids of the business, and the recipients Meta cannot deliver to (E.164, as sent)."""

    def __init__(self):
        self.phone_number_ids = {PHONE_NUMBER_ID}
        self.undeliverable: set[str] = set()
        # Called with each accepted message's wamid and recipient before the answer goes out: a test posts
        # Meta's status webhook from there, as Meta can before our own call has its answer.
        self.on_accept: Callable[[str, str], None] | None = None
        # With a value, a success answer trickles in a few bytes at a time over that many seconds (each read
        # well within any read timeout, the whole answer far slower): a slow network, a struggling proxy.
        self.trickle_seconds = 0.0
        self.openapi = _openapi()  # loaded now: the first request must not wait for the spec
        app = Flask("fake-meta")
        app.add_url_rule("/<version>/<phone_number_id>/messages", view_func=self._send, methods=["POST"])
        super().__init__(app)

    def _send(self, version: str, phone_number_id: str):
        errors = _spec_errors(*self.openapi) if self.openapi else []
        self.record(errors)
        if (scripted := self.scripted_answer()) is not None:
            return scripted
        if request.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return _error(401, 190, "Invalid OAuth access token.")
        if phone_number_id not in self.phone_number_ids:
            return _error(
                400,
                100,
                f"Unsupported post request. Object with ID '{phone_number_id}' does not exist, cannot be loaded "
                "due to missing permissions, or does not support this operation.",
                error_type="GraphMethodException",
            )
        if errors:
            return _error(400, 100, "(#100) Invalid parameter", "; ".join(errors))
        to = (request.get_json(silent=True) or {}).get("to", "")
        if to in self.undeliverable:
            return _error(400, 131026, "(#131026) Message Undeliverable", "Message Undeliverable.")
        wa_id = "".join(filter(str.isdigit, to))
        wamid = "wamid." + base64.b64encode(wa_id.encode() + uuid.uuid4().bytes).decode()
        if self.on_accept:
            self.on_accept(wamid, to)
        answer = jsonify(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": wa_id}],
                "messages": [{"id": wamid, "message_status": "accepted"}],
            }
        )
        return self._trickled(answer.get_data()) if self.trickle_seconds else answer

    def _trickled(self, body: bytes) -> Response:
        pieces = [body[i : i + 8] for i in range(0, len(body), 8)]
        pause = self.trickle_seconds / len(pieces)

        def chunks():
            for piece in pieces:
                time.sleep(pause)
                yield piece

        return Response(chunks(), content_type="application/json", headers={"Content-Length": str(len(body))})


CASE = ProviderCase(
    name="meta",
    start_fake=lambda: FakeMeta().start(),
    env=lambda fake: {
        "WHATSAPP_PROVIDER": "meta",
        "META_API_BASE_URL": fake.url,
        "META_ACCESS_TOKEN": ACCESS_TOKEN,
        "META_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "META_API_VERSION": VERSION,
    },
    transient=Scripted(
        429, error_body(130429, "(#130429) Rate limit hit", "Cloud API message throughput has been reached.")
    ),
    permanent=Scripted(400, error_body(131026, "(#131026) Message Undeliverable", "Message Undeliverable.")),
    configuration=Scripted(401, error_body(190, "Invalid OAuth access token.")),
    spec_available=spec_available,
)
