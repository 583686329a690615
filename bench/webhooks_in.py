"""Inbound: verified Meta status webhooks handled by the API, from 32 concurrent keep-alive clients for 20 s.

Usage: python -m bench.webhooks_in [SECONDS] [CLIENTS]
Against a private Redis, records MESSAGES messages as a worker leaves them after a send (accepted as
batches, claimed, then `sent` with provider `meta` and a wamid, which indexes the wamid), through the
store's own scripts in-process; then runs the Procfile's `web` line (granian) and POSTs genuine Meta
status webhooks at /v1/webhooks/meta, each signed with X-Hub-Signature-256 as Meta signs them
(tests/fakes/inbound.py), with bench.http_load's client. Requests go through the wamids twice,
`delivered` for every one, then `read` for every one, so each request is distinct and, until both
rounds are used up, each really moves a message (verify, parse, one Lua script: status, history,
counters). Measured: requests/s, latency, non-200 answers, and the share of reports the answers say
were applied (`ok`) rather than duplicate or stale. The requests are built and signed before the run,
so the client leaves the CPU to the server.
"""

from __future__ import annotations

import itertools
import json
import sys
import time

from bench import http_load
from bench.common import private_redis, service_env, web
from dispatcher.accounts import key_id
from dispatcher.messages import Route, new_message
from dispatcher.services import build_services
from dispatcher.settings import load_settings
from dispatcher.store import Move
from tasks.envelope import publishers
from tests.fakes.inbound import META_PHONE_NUMBER_ID, meta_signed, meta_status

MESSAGES = 40_000  # 80,000 distinct requests: enough for 3,600 requests/s over the 2 + 20 s
APP_SECRET = "bench-meta-app-secret"
META_ENV = {
    "WHATSAPP_PROVIDERS": "mock,meta",
    "META_ACCESS_TOKEN": "bench-token",
    "META_PHONE_NUMBER_ID": META_PHONE_NUMBER_ID,
    "META_APP_SECRET": APP_SECRET,
    "SENDER_RATE_META": "0",  # unpaced, so every claim succeeds at once
}


def wamid(index: int) -> str:
    return f"wamid.HBgNNTU2NDk5OTk5ODg4OBUCABEYEkJFTkNI{index:010d}"


def sent_messages(settings, count: int) -> None:
    """`count` messages in status `sent` through Meta, wamid(i) for the i-th, as a worker would leave them:
    accepted (as batches of 1000, the fast path), claimed, then recorded `sent` with their wamid."""
    services = build_services(settings, publishers(settings.queue_name))
    store, service = services.store, services.messages
    caller, route = key_id("bench"), Route("meta", META_PHONE_NUMBER_ID)
    for start in range(0, count, 1000):
        indexes = range(start, min(start + 1000, count))
        rows = [new_message(caller, f"bench-{index}", "+5564999998888", "Olá! Bench", route) for index in indexes]
        batch_id, _ = service.accept_batch(caller, rows, route)
        state, claims = store.claim_group(batch_id, [row.message_id for row in rows])
        assert state == "running" and len(claims) == len(rows), (state, len(claims))
        moves = [
            Move(row.message_id, "sent", ("sending",), fields={"provider_message_id": wamid(index)})
            for index, row in zip(indexes, rows, strict=True)
        ]
        assert all(outcome == "ok" for outcome in store.move(moves))


def requests(port: int, count: int) -> list[bytes]:
    """Signed webhooks: `delivered` for every wamid, then `read` for every one."""
    now = int(time.time())
    built = []
    for status in ("delivered", "read"):
        for index in range(count):
            headers, body = meta_signed(APP_SECRET, meta_status(wamid(index), status, now))
            built.append(http_load.post(port, "/v1/webhooks/meta", body, headers))
    return built


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    outcomes: dict[str, int] = {}

    def count(status: int, body: bytes) -> None:
        if status == 200:
            for outcome, n in json.loads(body)["outcomes"].items():
                outcomes[outcome] = outcomes.get(outcome, 0) + n

    with private_redis() as url:
        env = service_env(url, **META_ENV)
        sent_messages(load_settings(env), MESSAGES)
        with web(env) as port:
            queue = itertools.cycle(requests(port, MESSAGES))  # past 2 * MESSAGES requests: repeats, duplicates
            http_load.run(port, 2, clients, lambda: next(queue))  # warm-up
            load = http_load.run(port, seconds, clients, lambda: next(queue), count)
    reports = sum(outcomes.values())
    applied = outcomes.get("ok", 0) / reports * 100 if reports else 0
    others = ", ".join(f"{name} {n}" for name, n in sorted(outcomes.items()) if name != "ok") or "none other"
    print(
        f"Inbound Meta status webhooks ({clients} clients, {seconds:.0f} s, web from the Procfile): "
        f"{load.figures()}; {applied:.1f} % applied a change ({others})"
    )


if __name__ == "__main__":
    main()
