"""A fake Evolution API v2 server: sendText and sendMedia as the docs and source answer them.

Bodies are checked against the official docs' OpenAPI (`evolution_api_v2_openapi.json` in
PROVIDER_SPECS_DIR) when it is there: a body the spec refuses gets the 400 the real API would give,
and is recorded as a spec error.
"""

from __future__ import annotations

import functools
import json
import time
import uuid

import jsonschema
from flask import Flask, jsonify, request

from tests.fakes.server import FakeServer, Scripted, specs_dir
from tests.provider_cases import ProviderCase

API_KEY = "evolution-test-key"
QR_PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAcCBlCw"
    "AAAABJRU5ErkJggg=="
)
INSTANCE = "loja-1"


@functools.cache
def _body_schemas() -> dict[str, dict] | None:
    folder = specs_dir()
    if folder is None:
        return None
    spec = json.loads((folder / "evolution_api_v2_openapi.json").read_text())
    return {
        endpoint: spec["paths"][f"/message/{endpoint}/{{instance}}"]["post"]["requestBody"]["content"][
            "application/json"
        ]["schema"]
        for endpoint in ("sendText", "sendMedia")
    }


def spec_available() -> bool:
    return _body_schemas() is not None


def _error(status: int, error: str, message) -> tuple:
    return jsonify({"status": status, "error": error, "response": {"message": message}}), status


class FakeEvolution(FakeServer):
    """State: the instances that exist, and the numbers that are not on WhatsApp."""

    def __init__(self):
        self.instances = {INSTANCE: "open"}  # name → connection state
        self.not_on_whatsapp: set[str] = set()
        self.raw_paths: list[str] = []  # every request's path and query as sent, routed or not
        _body_schemas()  # loaded now: the first request must not wait for the spec
        app = Flask("fake-evolution")
        app.add_url_rule("/message/<endpoint>/<instance>", view_func=self._send, methods=["POST"])
        app.add_url_rule("/instance/fetchInstances", view_func=self._list, methods=["GET"])
        app.add_url_rule("/instance/create", view_func=self._create, methods=["POST"])
        app.add_url_rule("/instance/connect/<instance>", view_func=self._connect, methods=["GET"])
        app.add_url_rule("/instance/connectionState/<instance>", view_func=self._state, methods=["GET"])
        app.add_url_rule("/instance/logout/<instance>", view_func=self._logout, methods=["DELETE"])
        app.add_url_rule("/instance/delete/<instance>", view_func=self._delete, methods=["DELETE"])
        app.before_request(self._note_raw_path)
        app.before_request(self._authenticate)
        super().__init__(app)

    def _note_raw_path(self) -> None:
        self.raw_paths.append(request.environ["RAW_URI"])

    def _authenticate(self):
        if request.path.startswith("/instance") and request.headers.get("apikey") != API_KEY:
            self.record()
            return _error(401, "Unauthorized", "Unauthorized")
        return None

    def _missing(self, instance: str):
        return _error(404, "Not Found", [f'The "{instance}" instance does not exist'])

    def _list(self):
        self.record()
        return jsonify(
            [
                {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
                    "name": name,
                    "connectionStatus": state,
                    "integration": "WHATSAPP-BAILEYS",
                    "number": None,
                    "token": "t",
                }
                for name, state in sorted(self.instances.items())
            ]
        )

    def _create(self):
        body = request.get_json(silent=True) or {}
        self.record()
        if body.get("integration") not in ("WHATSAPP-BAILEYS", "WHATSAPP-BUSINESS", "EVOLUTION"):
            return _error(400, "Bad Request", ["Invalid integration"])
        name = body.get("instanceName", "")
        if name in self.instances:
            return _error(403, "Forbidden", [f'This name "{name}" is already in use.'])
        self.instances[name] = "connecting"
        return jsonify(
            {
                "instance": {
                    "instanceName": name,
                    "instanceId": str(uuid.uuid4()),
                    "integration": body["integration"],
                    "status": "connecting",
                },
                "hash": body.get("token") or uuid.uuid4().hex,
                "settings": {},
                "qrcode": self._qrcode() if body.get("qrcode") else {},
            }
        ), 201

    @staticmethod
    def _qrcode(number: str = "") -> dict:
        return {
            "pairingCode": "WZYEH1YY" if number else None,
            "code": "2@" + uuid.uuid4().hex,
            "base64": QR_PNG,
            "count": 1,
        }

    def _connect(self, instance: str):
        self.record()
        if instance not in self.instances:
            return self._missing(instance)
        if self.instances[instance] == "open":
            return jsonify({"instance": {"instanceName": instance, "state": "open"}})
        return jsonify(self._qrcode(request.args.get("number", "")))

    def _state(self, instance: str):
        self.record()
        if instance not in self.instances:
            return self._missing(instance)
        return jsonify({"instance": {"instanceName": instance, "state": self.instances[instance]}})

    def _logout(self, instance: str):
        self.record()
        if instance not in self.instances:
            return self._missing(instance)
        if self.instances[instance] != "open":
            return _error(400, "Bad Request", [f'The "{instance}" instance is not connected'])
        self.instances[instance] = "close"
        return jsonify({"status": "SUCCESS", "error": False, "response": {"message": "Instance logged out"}})

    def _delete(self, instance: str):
        self.record()
        if instance not in self.instances:
            return self._missing(instance)
        del self.instances[instance]
        return jsonify({"status": "SUCCESS", "error": False, "response": {"message": "Instance deleted"}})

    def _send(self, endpoint: str, instance: str):
        body = request.get_json(silent=True)
        errors = []
        schemas = _body_schemas()
        if schemas and endpoint in schemas:
            errors = [e.message for e in jsonschema.Draft4Validator(schemas[endpoint]).iter_errors(body)]
        self.record(errors)
        if (scripted := self.scripted_answer()) is not None:
            return scripted
        if request.headers.get("apikey") != API_KEY:
            return _error(401, "Unauthorized", "Unauthorized")
        if instance not in self.instances:
            return _error(404, "Not Found", [f'The "{instance}" instance does not exist'])
        if errors or endpoint not in ("sendText", "sendMedia"):
            return _error(400, "Bad Request", errors or [f"unknown endpoint {endpoint}"])
        number = body["number"]
        if number in self.not_on_whatsapp:
            return _error(400, "Bad Request", [{"jid": f"{number}@s.whatsapp.net", "exists": False, "number": number}])
        message = (
            {"conversation": body["text"]}
            if endpoint == "sendText"
            else {
                "documentMessage" if body["mediatype"] == "document" else f"{body['mediatype']}Message": {
                    "url": body["media"],
                    "caption": body.get("caption", ""),
                }
            }
        )
        return jsonify(
            {
                "key": {"remoteJid": f"{number}@s.whatsapp.net", "fromMe": True, "id": uuid.uuid4().hex[:16].upper()},
                "pushName": "",
                "status": "PENDING",
                "message": message,
                "messageType": "conversation" if endpoint == "sendText" else "mediaMessage",
                "messageTimestamp": int(time.time()),
                "instanceId": str(uuid.uuid4()),
                "source": "unknown",
            }
        ), 201


def baileys_jid(number: str) -> str:
    """The JID WhatsApp gives a number: a Brazilian mobile's loses its ninth digit (5564999998888 → 556499998888)."""
    if number.startswith("55") and len(number) == 13 and number[4] == "9":
        number = number[:4] + number[5:]
    return f"{number}@s.whatsapp.net"


def echo_error(status: int, error: str) -> Scripted:
    """An error that repeats the request, as Evolution's do: the number as sent and as a JID, and the text."""

    def body(sent_request) -> dict:
        sent = sent_request.get_json(silent=True) or {}
        number = str(sent.get("number", ""))
        echoed = {"jid": baileys_jid(number), "exists": True, "number": number, "text": sent.get("text", "")}
        return {"status": status, "error": error, "response": {"message": [echoed]}}

    return Scripted(status, body)


def _error_answer(status: int, error: str, message) -> Scripted:
    return Scripted(status, {"status": status, "error": error, "response": {"message": message}})


CASE = ProviderCase(
    name="evolution",
    start_fake=lambda: FakeEvolution().start(),
    env=lambda fake: {
        "WHATSAPP_PROVIDER": "evolution",
        "EVOLUTION_API_URL": fake.url,
        "EVOLUTION_API_KEY": API_KEY,
        "EVOLUTION_INSTANCE": INSTANCE,
    },
    transient=_error_answer(500, "Internal Server Error", ["Connection Closed"]),
    permanent=_error_answer(
        400, "Bad Request", [{"jid": "5564999998888@s.whatsapp.net", "exists": False, "number": "5564999998888"}]
    ),
    configuration=_error_answer(401, "Unauthorized", "Unauthorized"),
    spec_available=spec_available,
)
