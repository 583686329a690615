"""A local HTTP server that answers every provider's send at once with that provider's success body.

Run by bench/provider_overhead.py in a process of its own, so its CPU time is not counted as ours.
Usage: python -m bench.instant_server PORT
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWERS = [
    (
        "/message/send",
        201,
        {"key": {"remoteJid": "5564999998888@s.whatsapp.net", "fromMe": True, "id": "BAE5F00D"}, "status": "PENDING"},
    ),
    ("/Messages.json", 201, {"sid": "SM" + "0" * 32, "status": "queued"}),
    (
        "/messages",
        200,
        {"messaging_product": "whatsapp", "messages": [{"id": "wamid.X", "message_status": "accepted"}]},
    ),
    ("", 200, {"id": "bridge-1", "status": "accepted"}),
]


class Instant(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as providers serve
    disable_nagle_algorithm = True  # else each answer waits ~40 ms for the client's delayed ACK

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body = next((s, b) for suffix, s, b in ANSWERS if suffix in self.path)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Instant).serve_forever()
