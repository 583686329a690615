"""The harness every provider fake shares: a real HTTP server on a free local port, in a thread,
with a record of the requests it got and a queue of scripted failures.

A test scripts what the provider does next (`fake.script(...)`): answer with an error body, hang
past the client's timeout, answer with a proxy's HTML page; with nothing scripted the fake
answers as the provider does on success.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, Response, request
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.conftest import ROOT

HTML_PAGE = "<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"


def specs_dir() -> Path | None:
    """Where the providers' official specs are (PROVIDER_SPECS_DIR, default ../shared/providers), if there."""
    path = Path(os.environ.get("PROVIDER_SPECS_DIR", ROOT.parent / "shared" / "providers"))
    return path if path.is_dir() else None


@dataclass
class Received:
    method: str
    path: str
    headers: dict
    json: object = None
    form: dict = field(default_factory=dict)
    spec_errors: list[str] = field(default_factory=list)


@dataclass
class Scripted:
    """One scripted answer: a status and JSON body, or `hang` seconds of silence, or an HTML page."""

    status: int = 200
    body: object = None
    headers: dict = field(default_factory=dict)
    hang: float = 0.0
    html: bool = False


class _NoDelayHandler(WSGIRequestHandler):
    disable_nagle_algorithm = True  # else each answer can wait ~40 ms for the client's delayed ACK


class FakeServer:
    def __init__(self, app: Flask):
        self.app = app
        self.received: list[Received] = []
        self.scripted: deque[Scripted] = deque()
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_NoDelayHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        # A short poll interval makes stop() quick (the default 0.5 s adds up over a suite).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, *answers: Scripted) -> None:
        self.scripted.extend(answers)

    def record(self, spec_errors: list[str] | None = None) -> Received:
        received = Received(
            request.method,
            request.path,
            dict(request.headers),
            request.get_json(silent=True),
            request.form.to_dict(flat=False),
            spec_errors or [],
        )
        self.received.append(received)
        return received

    def scripted_answer(self) -> Response | None:
        """The next scripted answer, if any (a hang sleeps, then answers 504 to a client long gone)."""
        if not self.scripted:
            return None
        answer = self.scripted.popleft()
        if answer.hang:
            time.sleep(answer.hang)
            return Response("", status=504)
        if answer.html:
            return Response(HTML_PAGE, status=answer.status, content_type="text/html")
        return Response(
            json.dumps(answer.body), status=answer.status, headers=answer.headers, content_type="application/json"
        )

    @property
    def spec_errors(self) -> list[str]:
        return [error for received in self.received for error in received.spec_errors]
