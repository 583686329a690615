"""What Redis executes to send bulk rows, counted in instructions: a figure that does not move with the machine's
load, to tell a slice's real cost from this machine's noise.

Usage: python -m bench.redis_instructions [ROWS] [drain|reports|accept]
Starts redis-server under valgrind's callgrind (Debian's valgrind; the redis-server the tests use), and counts
the instructions Redis runs for one of three things, in all and per message. Python's side is not counted.
- `drain` (the default): ROWS templated bulk rows (default 2,000) accepted, then, counted, claimed 100 at a time
  and recorded `sent` as a worker's chunk does (`claim_group`, then one `move` of the group).
- `reports`: ROWS single sends accepted and sent, then, counted, each reported `delivered` by its provider's
  webhook as the API applies it (`StatusReports.apply`: the provider id's lookup, the move, the report's digest).
- `accept`: counted, ROWS templated bulk rows accepted in one request, as the API accepts them (`accept_batch`:
  the rows' create_rows calls and the batch's start).
Run it for two commits in the same way to compare them: the count repeats within 0.2 %.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from bench.common import accept_campaign, service_env
from bench.memory import TEMPLATE
from dispatcher import statuses
from dispatcher.accounts import key_id
from dispatcher.messages import Route
from dispatcher.services import build_services
from dispatcher.settings import load_settings
from dispatcher.store import Move
from providers.inbound import StatusReport
from scripts.embedded_redis import find_redis_server, free_port
from tasks.delivery import Outcome, record
from tasks.envelope import publishers

GROUP = 100


def _row(n: int) -> dict:
    variables = {"name": f"Maria {n}", "day": "terça"}
    return {"recipient_phone": f"+55649{n:08d}", "external_id": f"row-{n}", "variables": variables}


def _sent(claim) -> Move:
    provider_id = f"wamid.HBgMNTU2NDk5OTk5ODg4OBUCABEYEjk{claim.message_id[-12:]}"
    return Move(claim.message_id, statuses.SENT, (statuses.SENDING,), attempt=claim.attempt, fields={
        "provider_message_id": provider_id})  # fmt: skip


def _drain(url: str, rows: int, zero) -> None:
    """Accept `rows`, call `zero()`, then send them as a worker's chunks record them."""
    settings = load_settings(service_env(url, MOCK_LATENCY_MS="0"))
    services = build_services(settings, publishers(settings.queue_name))
    store = services.store
    (batch_id,) = accept_campaign(services, key_id("bench"), TEMPLATE, rows, _row, rows)
    ids = store.batch_message_ids(batch_id, 0, rows)
    zero()
    for first in range(0, rows, GROUP):
        _, claims = store.claim_group(batch_id, ids[first : first + GROUP])
        store.move([_sent(claim) for claim in claims])  # each with a provider id of its own, as sends have
    if store.counts().get(statuses.SENT) != rows:
        raise SystemExit(f"not every row was sent: {store.counts()}")


def _reports(url: str, rows: int, zero) -> None:
    """Send `rows` single sends, call `zero()`, then apply a `delivered` report for each, as the webhook route
    does."""
    settings = load_settings(service_env(url, MOCK_LATENCY_MS="0"))
    services = build_services(settings, publishers(settings.queue_name))
    store = services.store
    sent = []
    for n in range(rows):
        message_id = services.messages.accept(
            key_id("bench"), f"+55649{n:08d}", "Olá", f"s-{n}", Route("mock")
        ).message_id
        claim = store.claim(message_id, take_over_expired=True)
        provider_id = f"wamid.HBgMNTU2NDk5OTk5ODg4OBUCABEYEjk{message_id[-12:]}"
        record(store, message_id, Outcome(statuses.SENT, provider_message_id=provider_id), claim.attempt)
        sent.append(provider_id)
    zero()
    for provider_id in sent:
        report = StatusReport(
            "mock", provider_id, statuses.DELIVERED, f"{provider_id}:delivered", provider_status="delivered"
        )
        if services.reports.apply(report) != "ok":
            raise SystemExit(f"a report was not applied: {provider_id}")


def _accept(url: str, rows: int, zero) -> None:
    """Call `zero()`, then accept `rows` templated bulk rows in one request."""
    settings = load_settings(service_env(url, MOCK_LATENCY_MS="0"))
    services = build_services(settings, publishers(settings.queue_name))
    zero()
    (batch_id,) = accept_campaign(services, key_id("bench"), TEMPLATE, rows, _row, rows)
    if int(services.store.batch(batch_id)["total"]) != rows:
        raise SystemExit(f"not every row was accepted: {services.store.batch(batch_id)}")


WHAT = {"drain": (_drain, "send {rows:,} bulk rows (claim_group and move, 100 a group)"),
        "reports": (_reports, "apply {rows:,} delivered reports to single sends"),
        "accept": (_accept, "accept {rows:,} bulk rows in one request")}  # fmt: skip


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000
    run, told = WHAT[sys.argv[2] if len(sys.argv) > 2 else "drain"]
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", find_redis_server(), "--port",
             str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder,
        )  # fmt: skip
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 60
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

        def control(option: str) -> None:
            subprocess.run(["callgrind_control", option, str(server.pid)], check=True, capture_output=True)

        try:
            run(f"redis://127.0.0.1:{port}/0", rows, lambda: control("-z"))
            control("-d")
        finally:
            client.shutdown(nosave=True)
            server.wait(60)
        (dump,) = Path(folder).glob("callgrind.out.*.1")  # the dump after the zero: the drain alone
        total = next(int(line.split()[1]) for line in dump.read_text().splitlines() if line.startswith("summary:"))
    print(f"Redis instructions to {told.format(rows=rows)}: {total:,}, {total / rows:,.0f} a message")


if __name__ == "__main__":
    main()
