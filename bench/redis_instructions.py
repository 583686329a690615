"""What Redis executes to send bulk rows, counted in instructions: a figure that does not move with the machine's
load, to tell a slice's real cost from this machine's noise.

Usage: python -m bench.redis_instructions [ROWS]
Starts redis-server under valgrind's callgrind (Debian's valgrind; the redis-server the tests use), accepts
ROWS templated bulk rows (default 2,000), zeroes the count, then claims them 100 at a time and records them
`sent` as a worker's chunk does (`claim_group`, then one `move` of the group), and prints the instructions
Redis ran for that drain, in all and per message. Python's side is not counted. Run it for two commits in the
same way to compare them: the count repeats within 0.2 %.
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
from dispatcher.services import build_services
from dispatcher.settings import load_settings
from dispatcher.store import Move
from scripts.embedded_redis import find_redis_server, free_port
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
        sent = {"provider_message_id": "wamid.HBgMNTU2NDk5OTk5ODg4OBUCABEYEjk"}
        store.move(
            [Move(c.message_id, statuses.SENT, (statuses.SENDING,), attempt=c.attempt, fields=sent) for c in claims]
        )
    if store.counts().get(statuses.SENT) != rows:
        raise SystemExit(f"not every row was sent: {store.counts()}")


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000
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
            _drain(f"redis://127.0.0.1:{port}/0", rows, lambda: control("-z"))
            control("-d")
        finally:
            client.shutdown(nosave=True)
            server.wait(60)
        (dump,) = Path(folder).glob("callgrind.out.*.1")  # the dump after the zero: the drain alone
        total = next(int(line.split()[1]) for line in dump.read_text().splitlines() if line.startswith("summary:"))
    print(f"Redis instructions to send {rows:,} bulk rows (claim_group and move, {GROUP} a group): {total:,}, "
          f"{total / rows:,.0f} a message")  # fmt: skip


if __name__ == "__main__":
    main()
