"""A fake bridge (an n8n webhook) for the generic webhook provider: checks the shared secret, records
the JSON it gets, answers with an id of its own.

It also counts what it *accepted* (answered 2xx, or took and answered too late) per `external_id`, for
the fault tests: a message the bridge accepted twice was sent twice.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict

from flask import Flask, Response, jsonify, request

from tests.fakes.server import FakeServer, Scripted
from tests.provider_cases import ProviderCase

SECRET = "bridge-secret-0123456789"


class FakeBridge(FakeServer):
    def __init__(self):
        app = Flask("fake-bridge")
        app.add_url_rule("/hook", view_func=self._hook, methods=["POST"])
        super().__init__(app)
        self.delay = 0.0  # seconds before each answer: a provider that takes a few ms
        self.scripted_for: dict[str, Scripted] = {}  # external_id → the answer its next request gets
        self.accepted: Counter[str] = Counter()  # external_id → times the bridge took the message
        self.accepted_late: set[str] = set()  # external ids taken by a request answered too late
        self.faulted: dict[str, list[str]] = defaultdict(list)  # external_id → the faults its requests got
        self.accepted_while_hanging = 0  # messages taken while another request was being held
        self.garbled = False  # answer a taken message with a JSON content type and a body that is not JSON

    def accepted_so_far(self) -> Counter[str]:
        """`accepted` copied in one step (a C-level dict copy, which the server's threads cannot interleave): what
        a test polls while messages are still arriving. Iterating `accepted` itself then can raise
        "dictionary changed size during iteration"."""
        return Counter(dict(self.accepted))

    def _fault(self, external_id: str) -> Scripted | None:
        """The answer scripted for this message's request, if any (its own first, then the queue and window)."""
        with self._lock:
            own = self.scripted_for.pop(external_id, None)
            if own is not None:
                self.faults_served[own.name] += 1
        scripted = own or self.next_scripted()
        if scripted is not None:
            with self._lock:
                self.faulted[external_id].append(scripted.name)
        return scripted

    def _hook(self):
        self.record()
        body = request.get_json(silent=True) or {}
        external_id = str(body.get("external_id"))
        scripted = self._fault(external_id)
        if scripted is not None and not scripted.late:
            return self.answer(scripted)
        if request.headers.get("X-Dispatcher-Secret") != SECRET:
            return jsonify({"message": "Authorization data is wrong!"}), 403
        if not body.get("phone") or "message" not in body:
            return jsonify({"message": "phone and message are required"}), 422
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            self.accepted[external_id] += 1
            if self.hanging:
                self.accepted_while_hanging += 1
            if scripted is not None:
                self.accepted_late.add(external_id)
        if scripted is not None:  # taken, but the answer comes after the client gave up
            self.hold(scripted.hang)
        if self.garbled:
            return Response('{"id": "n8n-', status=200, content_type="application/json")
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
