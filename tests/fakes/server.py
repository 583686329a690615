"""The harness every provider fake shares: a real HTTP server on a free local port, in a thread,
with a record of the requests it got and a queue of scripted failures.

A test scripts what the provider does next (`fake.script(...)`): answer with an error body, hang
past the client's timeout, answer with a proxy's HTML page; with nothing scripted the fake
answers as the provider does on success.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter, deque
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
    at: float = field(default_factory=time.time)  # when it came (unix seconds)


@dataclass
class Scripted:
    """One scripted answer: a status and JSON body, or `hang` seconds of silence, or an HTML page.

    `body` may be a function of the request, for an answer that repeats what it got (as providers' errors do).
    """

    status: int = 200
    body: object = None
    headers: dict = field(default_factory=dict)
    hang: float = 0.0
    html: bool = False
    # With `hang`: the provider takes the message, then answers (success) only after `hang` seconds,
    # to a client that may have given up: the ambiguous case of a timeout (fakes that support it).
    late: bool = False
    kind: str = ""  # a name for the fault in `FakeServer.faults_served` (default: the status, or "hang")

    @property
    def name(self) -> str:
        return self.kind or ("hang" if self.hang else str(self.status))


@dataclass
class FaultWindow:
    """For `seconds` from its creation, a share of requests each get one of the scripted `faults`.

    `faults` pairs a share (0 to 1) with an answer; the shares add up to at most 1, the rest of the
    requests are answered as usual. The draw is random with a fixed seed: which request gets a fault
    depends on the order requests arrive in, but the mix does not.
    """

    seconds: float
    faults: list[tuple[float, Scripted]]
    seed: int = 8
    ends_at: float = field(init=False)

    def __post_init__(self):
        self.ends_at = time.monotonic() + self.seconds
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        return time.monotonic() < self.ends_at

    def draw(self) -> Scripted | None:
        with self._lock:
            if not self.open:
                return None
            roll = self._random.random()
        for share, answer in self.faults:
            if roll < share:
                return answer
            roll -= share
        return None


class _NoDelayHandler(WSGIRequestHandler):
    disable_nagle_algorithm = True  # else each answer can wait ~40 ms for the client's delayed ACK


class FakeServer:
    def __init__(self, app: Flask):
        self.app = app
        self.received: list[Received] = []
        self.scripted: deque[Scripted] = deque()
        self.faults: FaultWindow | None = None
        self.faults_served: Counter[str] = Counter()
        self.hanging = 0  # requests being held (hung or late) right now
        self._lock = threading.Lock()
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

    def next_scripted(self) -> Scripted | None:
        """The next scripted answer (the queue first, then the fault window), counted in `faults_served`."""
        try:
            answer = self.scripted.popleft()
        except IndexError:
            answer = self.faults.draw() if self.faults else None
        if answer is not None:
            with self._lock:
                self.faults_served[answer.name] += 1
        return answer

    def hold(self, seconds: float) -> None:
        """Keep this request waiting (a hang), counted in `hanging` meanwhile."""
        with self._lock:
            self.hanging += 1
        try:
            time.sleep(seconds)
        finally:
            with self._lock:
                self.hanging -= 1

    def scripted_answer(self) -> Response | None:
        """The next scripted answer, if any (a hang sleeps, then answers 504 to a client long gone)."""
        answer = self.next_scripted()
        return None if answer is None else self.answer(answer)

    def answer(self, answer: Scripted) -> Response:
        """`answer` as a response (a hang sleeps, then answers 504 to a client long gone)."""
        if answer.hang:
            self.hold(answer.hang)
            return Response("", status=504)
        if answer.html:
            return Response(HTML_PAGE, status=answer.status, content_type="text/html")
        body = answer.body(request) if callable(answer.body) else answer.body
        return Response(json.dumps(body), status=answer.status, headers=answer.headers, content_type="application/json")

    @property
    def spec_errors(self) -> list[str]:
        return [error for received in self.received for error in received.spec_errors]
