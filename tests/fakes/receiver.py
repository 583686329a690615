"""A fake reach-town callback endpoint: verifies our signature as the README tells receivers to, records
each event it accepts, and can be taken down (503) and brought back up by the test."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from flask import Flask, request

from dispatcher.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.fakes.server import FakeServer

SECRET = "reach-town-callback-secret"


@dataclass(frozen=True)
class Accepted:
    event: dict
    received_at: float
    headers: dict


class FakeReceiver(FakeServer):
    def __init__(self, secret: str = SECRET):
        app = Flask("fake-receiver")
        app.add_url_rule("/hooks/whatsapp", view_func=self._hook, methods=["POST"])
        super().__init__(app)
        self.secret = secret
        self.down = False
        self.accepted: list[Accepted] = []
        self.refused_signatures = 0
        self.hook_url = f"{self.url}/hooks/whatsapp"

    def _hook(self):
        self.record()
        if self.down:
            return "receiver down", 503
        raw = request.get_data()
        if not verify(self.secret, raw, request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER)):
            self.refused_signatures += 1
            return "bad signature", 401
        self.accepted.append(Accepted(json.loads(raw), time.time(), dict(request.headers)))
        return "", 204

    def events(self, type_: str | None = None) -> list[dict]:
        return [a.event for a in self.accepted if type_ is None or a.event["type"] == type_]

    def statuses_of(self, message_id: str) -> list[str]:
        return [e["status"] for e in self.events() if e.get("message_id") == message_id]
