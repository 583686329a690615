"""API throughput: POST /v1/messages/send from 32 concurrent keep-alive clients for 20 s.

Usage: python -m bench.send_api [SECONDS] [CLIENTS]
Runs the Procfile's `web` line (granian) against a private Redis, with no worker, so the figure is
the API's alone. The client is bench.http_load's small asyncio HTTP/1.1 loop, light enough to leave the
CPU to the server on this 2-core machine. Every request has its own external_id, so every one creates a message.

It runs twice, alternating: with the account's quotas off, and on (limits too high to refuse anything, so
every request pays the request bucket and the daily count): the difference is what quotas cost.
"""

from __future__ import annotations

import itertools
import json
import sys

from bench import http_load
from bench.common import API_KEY, private_redis, service_env, web

_external_ids = itertools.count()  # shared by every run, so no request is a replay


def _request(port: int, index: int) -> bytes:
    body = json.dumps(
        {"recipient_phone": "+5564999998888", "message_body": "Olá! Bench", "external_id": f"bench-{index}"}
    ).encode()
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
    return http_load.post(port, "/v1/messages/send", body, headers)


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    variants = {
        "quotas off": {},
        "quotas on": {"ACCOUNT_REQUESTS_PER_SECOND": "1000000", "ACCOUNT_MESSAGES_PER_DAY": "1000000000"},
    }
    for name, overrides in variants.items():
        with private_redis() as url, web(service_env(url, **overrides)) as port:
            http_load.run(port, 2, clients, lambda: _request(port, next(_external_ids)))  # warm-up
            load = http_load.run(port, seconds, clients, lambda: _request(port, next(_external_ids)))
        print(f"API send, {name} ({clients} clients, {seconds:.0f} s, web from the Procfile): {load.figures()}")


if __name__ == "__main__":
    main()
