"""A fake bridge (an n8n webhook) for the generic webhook provider: checks the shared secret, records
the JSON it gets, answers with an id of its own."""

from __future__ import annotations

import uuid

from flask import Flask, jsonify, request

from tests.fakes.server import FakeServer, Scripted
from tests.provider_cases import ProviderCase

SECRET = "bridge-secret"


class FakeBridge(FakeServer):
    def __init__(self):
        app = Flask("fake-bridge")
        app.add_url_rule("/hook", view_func=self._hook, methods=["POST"])
        super().__init__(app)

    def _hook(self):
        self.record()
        if (scripted := self.scripted_answer()) is not None:
            return scripted
        if request.headers.get("X-Dispatcher-Secret") != SECRET:
            return jsonify({"message": "Authorization data is wrong!"}), 403
        body = request.get_json(silent=True) or {}
        if not body.get("phone") or "message" not in body:
            return jsonify({"message": "phone and message are required"}), 422
        return jsonify({"id": f"n8n-{uuid.uuid4().hex[:12]}", "status": "accepted"})


CASE = ProviderCase(
    name="webhook",
    start_fake=lambda: FakeBridge().start(),
    env=lambda fake: {
        "WHATSAPP_PROVIDER": "webhook",
        "WEBHOOK_PROVIDER_URL": f"{fake.url}/hook",
        "WEBHOOK_PROVIDER_SECRET": SECRET,
    },
    transient=Scripted(503, {"message": "Workflow could not be started!"}),
    permanent=Scripted(422, {"message": "phone and message are required"}),
    configuration=Scripted(403, {"message": "Authorization data is wrong!"}),
    spec_available=None,
)
