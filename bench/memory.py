"""Redis memory per message once it is sent, history included, and while it waits: what a growing user pays for
first.

Usage: python -m bench.memory [MESSAGES]
On a private Redis, MESSAGES single sends are accepted and recorded `sent` the way a worker records them (the
store's claim, then `tasks.delivery.record` with the provider's id); then, on a fresh database, MESSAGES rows of
bulk requests (10,000 rows each, one templated text) are accepted and sent the same way, a chunk of 500 claimed
together as a worker's chunk claims them. Then the bulk rows again, each then reported `delivered` 3 seconds and
`read` 2 hours later, as a real send is (the clock the services read is moved). Last, single sends accepted
and not sent: what a message waiting costs, with its text and its task. Otherwise the task queue is emptied
before each reading, as the workers would have consumed it, and so is the callback outbox, as the callbacks
process would have delivered it. Redis's `used_memory` is read before and after; the
difference divided by MESSAGES is printed, with the keys a message leaves behind.
"""

from __future__ import annotations

import sys
import time
import uuid

from bench.common import accept_campaign, private_redis, service_env
from dispatcher import redis_keys, statuses
from dispatcher.accounts import key_id
from dispatcher.messages import Route
from dispatcher.record_names import STORED
from dispatcher.redis_health import RECORD_VALUE_BYTES
from dispatcher.services import build_services
from dispatcher.settings import load_settings
from providers.inbound import StatusReport
from tasks.delivery import Outcome, record
from tasks.envelope import publishers

BULK_ROWS = 10_000
CHUNK = 500
CALLBACK_URL = "https://abcdefghijklmnopqrst.supabase.co/functions/v1/whatsapp-status?campaign=42"
CAMPAIGN = uuid.UUID("0b7f3c1e-5a52-4c1e-9d53-2f1c8f9b6a11")
TEMPLATE = "Olá {{name}}! A sua consulta de {{day}} está confirmada. Responda SAIR para não receber mais."


class _Clock:
    """Time as the services read it: now, or `ahead` seconds later (a report hours after the send)."""

    ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


def _used(client) -> int:
    return int(client.info("memory")["used_memory"])


def _sent(services, message_id: str, attempt: int) -> None:
    outcome = Outcome(statuses.SENT, provider_message_id=f"wamid.HBgMNTU2NDk5OTk5ODg4OBUCABEYEjk{message_id[-12:]}")
    record(services.store, message_id, outcome, attempt)


MOCK = Route("mock")


def _single(services, count: int, clock: _Clock, route: Route = MOCK, external_id=None) -> None:
    caller, store = key_id("bench"), services.store
    for n in range(count):
        phone = f"+55649{n % 100_000_000:08d}"
        text = f"Olá Maria {n}! A sua consulta de terça está confirmada. Responda SAIR para não receber mais."
        external = external_id(n) if external_id else f"campaign_42_contact_{n}"
        message_id = services.messages.accept(caller, phone, text, external, route).message_id
        claim = store.claim(message_id, take_over_expired=True)
        _sent(services, message_id, claim.attempt)


def _reach_town(services, count: int, clock: _Clock) -> None:
    """Single sends as reach-town makes them: `campaign_<uuid>_contact_<uuid>`, and a callback URL of its own."""
    route = Route("mock", callback_url=CALLBACK_URL)
    _single(services, count, clock, route, lambda n: f"campaign_{CAMPAIGN}_contact_{uuid.UUID(int=n)}")


def _bulk(services, count: int, clock: _Clock) -> None:
    def row(n: int) -> dict:
        return {
            "recipient_phone": f"+55649{n % 100_000_000:08d}",
            "external_id": f"campaign_42_contact_{n}",
            "variables": {"name": f"Maria {n}", "day": "terça"},
        }

    store = services.store
    for batch_id in accept_campaign(services, key_id("bench"), TEMPLATE, count, row, BULK_ROWS):
        for first in range(0, int(store.batch(batch_id)["total"]), CHUNK):
            _, claims = store.claim_group(batch_id, store.batch_message_ids(batch_id, first, first + CHUNK))
            for claim in claims:
                _sent(services, claim.message_id, claim.attempt)


def _reported(services, count: int, clock: _Clock) -> None:
    """The bulk rows, sent, then delivered 3 seconds later and read 2 hours later, as Meta reports them (its
    status word, its own time a second before ours)."""
    _bulk(services, count, clock)
    store = services.store
    records = [key for key in store.redis.scan_iter("dispatch:msg:*", 1000) if key.count(":") == 2]  # not :log
    ids = [store.redis.hget(key, STORED["provider_message_id"]) for key in records]
    for status, later in ((statuses.DELIVERED, 3), (statuses.READ, 7200)):
        clock.ahead = later
        for provider_id in filter(None, ids):
            at = clock() - 1
            report = StatusReport("mock", provider_id, status, f"{provider_id}:{status}", at, provider_status=status)
            services.reports.apply(report)


def _queued(services, count: int, clock: _Clock) -> None:
    """Single sends accepted and not yet sent: each waits with its text and its Celery task."""
    caller, route = key_id("bench"), Route("mock")
    for n in range(count):
        phone = f"+55649{n % 100_000_000:08d}"
        text = f"Olá Maria {n}! A sua consulta de terça está confirmada. Responda SAIR para não receber mais."
        services.messages.accept(caller, phone, text, f"campaign_42_contact_{n}", route)


def _measure(url: str, count: int, send, value_bytes: int = RECORD_VALUE_BYTES) -> tuple[float, float]:
    """(bytes a message, keys a message) that `send` leaves behind, with Redis's hash-max-listpack-value at
    `value_bytes`."""
    settings = load_settings(service_env(url, MOCK_LATENCY_MS="0"))
    clock = _Clock()
    services = build_services(settings, publishers(settings.queue_name), clock)
    client = services.store.redis
    client.flushdb()
    client.config_set("hash-max-ziplist-value", value_bytes)
    before, keys_before = _used(client), client.dbsize()
    send(services, count, clock)
    if send is not _queued:
        client.delete(settings.queue_name)  # the tasks a worker would have consumed
        # and the status events the callbacks process would have delivered
        client.delete(redis_keys.CALLBACKS_DUE.key(), *client.scan_iter(redis_keys.CALLBACK_CHAIN.key("*"), 1000))
    return (_used(client) - before) / count, (client.dbsize() - keys_before) / count


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with private_redis() as url:
        for label, send, value_bytes in (
            ("single sends", _single, RECORD_VALUE_BYTES),
            ("bulk rows", _bulk, RECORD_VALUE_BYTES),
            ("bulk rows delivered and read", _reported, RECORD_VALUE_BYTES),
            ("single sends waiting (text and Celery task included)", _queued, RECORD_VALUE_BYTES),
            (
                f"reach-town's single sends, hash-max-listpack-value {RECORD_VALUE_BYTES}",
                _reach_town,
                RECORD_VALUE_BYTES,
            ),
            ("reach-town's single sends, hash-max-listpack-value 64 (Redis's default)", _reach_town, 64),
        ):
            per_message, keys = _measure(url, count, send, value_bytes)
            print(f"Redis memory per message, {label} ({count:,}): {per_message:,.0f} bytes, {keys:.2f} keys")


if __name__ == "__main__":
    main()
