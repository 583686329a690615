"""A fake reach-town callback endpoint: verifies our signature as the README tells receivers to, records
each event it accepts, and can be taken down (503) and brought back up by the test.

Every event it accepts is checked against its published schema (dispatcher/callback_events.py): reading the
events, or stopping the receiver, fails the test when one was not as documented."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from flask import Flask, request

from dispatcher.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.fakes.callback_schema import event_errors
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
        self.schema_errors: list[str] = []
        self.hook_url = f"{self.url}/hooks/whatsapp"

    def _hook(self):
        self.record()
        if self.down:
            return "receiver down", 503
        raw = request.get_data()
        if not verify(self.secret, raw, request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER)):
            self.refused_signatures += 1
            return "bad signature", 401
        event = json.loads(raw)
        self.schema_errors += event_errors(event)
        self.accepted.append(Accepted(event, time.time(), dict(request.headers)))
        return "", 204

    def stop(self) -> None:
        super().stop()
        self.check_schemas()

    def check_schemas(self) -> None:
        assert not self.schema_errors, f"callback events unlike their published schema: {self.schema_errors}"

    def events(self, type_: str | None = None) -> list[dict]:
        self.check_schemas()
        return [a.event for a in self.accepted if type_ is None or a.event["type"] == type_]

    def statuses_of(self, message_id: str) -> list[str]:
        return [e["status"] for e in self.events() if e.get("message_id") == message_id]
