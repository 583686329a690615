"""Status callbacks to the caller: one task delivers one chain of events, in order, then stops.

The events wait in Redis (`dispatcher/outbox.py`), written by the same scripts that change the
statuses. A chain's task POSTs its first event, signed; on a 2xx it takes the event off and goes on
with the next; on anything else it keeps the event, counts the attempt and has the chain tried
again after an exponential backoff (with jitter, capped), so later events of that message wait
behind it and arrive in order. After CALLBACK_RETRY_FOR seconds of failures (a day by default) the
event is dead: listed by `GET /v1/webhooks/deliveries?state=dead`, re-sent by its retry endpoint,
and the chain goes on.

These tasks run on their own queue (CALLBACK_QUEUE_NAME), consumed by the Procfile's `callbacks`
worker, so a slow or dead receiver never holds a slot that a WhatsApp send could use.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import socket
import time

import requests

from dispatcher import signatures
from dispatcher.callback_urls import UnsafeUrl, check_resolved
from dispatcher.outbox import Pending
from providers.deadline import DeadlineAdapter, deadline
from tasks import runtime
from tasks.celery_app import DELIVER_CALLBACKS, app

log = logging.getLogger(__name__)

# How long a chain is leased to the task delivering it; a task lost with it is replaced after that.
CHAIN_LEASE_SECONDS = 60
# One task keeps a chain this long at most, then hands it back, so one busy chain cannot hog a slot.
TASK_BUDGET_SECONDS = 20


@functools.cache
def _session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = "whatsapp-dispatcher-callbacks"
    adapter = DeadlineAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """About base·2^(attempt-1), between half and all of it, capped: 1 s, 2 s, 4 s ... an hour."""
    ceiling = min(cap, base * 2 ** min(attempt - 1, 40))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def post(pending: Pending) -> str | None:
    """POST one event, signed; returns None on a 2xx, else what went wrong. Raises UnsafeUrl."""
    settings = runtime.settings().callbacks
    if not settings.secret:
        return "WEBHOOK_SECRET is not set on this worker: callbacks are never sent unsigned"
    try:
        check_resolved(pending.url, settings.allowlist)
    except socket.gaierror as error:
        return f"callback_url host does not resolve: {error}"  # tried again later, as a refused connection is
    body = json.dumps(pending.event, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Dispatcher-Event-Id": pending.event_id,
        "X-Dispatcher-Event-Type": pending.event.get("type", ""),
        **signatures.headers(settings.secret, body),
    }
    timeout = settings.timeout_seconds
    try:
        with deadline(timeout) as call:  # CALLBACK_TIMEOUT bounds the whole delivery, however it trickles
            response = _session().post(
                pending.url, data=body, headers=headers, timeout=(min(timeout, 3.05), timeout), allow_redirects=False
            )
    except requests.RequestException as error:
        return f"no complete answer within {timeout:g} s" if call.expired else f"{type(error).__name__}: {error}"
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}"


@app.task(name=DELIVER_CALLBACKS, acks_late=True, ignore_result=True)
def deliver_callbacks(chain: str) -> int:
    """Deliver the chain's events in order until it is empty, an event fails, or the budget is spent.
    Returns how many events were delivered."""
    outbox = runtime.outbox()
    token = outbox.lock(chain, CHAIN_LEASE_SECONDS)
    if token is None:
        return 0  # another task has it (a republished duplicate)
    delivered = 0
    try:
        budget_ends = time.monotonic() + TASK_BUDGET_SECONDS
        while time.monotonic() < budget_ends:
            pending = outbox.head(chain)
            if pending is None or not _deliver_one(outbox, pending):
                return delivered
            delivered += 1
        outbox.due_now(chain)  # out of budget: the release loop hands the rest to a new task
        return delivered
    finally:
        outbox.unlock(chain, token)


def _deliver_one(outbox, pending: Pending) -> bool:
    """Try the chain's first event; True when the chain may go on with its next one."""
    settings = runtime.settings().callbacks
    context = {"message_id": pending.event.get("message_id"), "event_id": pending.event_id}
    hold = time.time() + CHAIN_LEASE_SECONDS
    try:
        error = post(pending)
    except UnsafeUrl as unsafe:
        log.error("callback dead, its URL is refused: %s", unsafe, extra=context)
        return outbox.dead(pending, str(unsafe), hold) > 0
    if error is None:
        log.info("callback delivered: %s", pending.event.get("type"), extra=context)
        return outbox.delivered(pending, hold) > 0
    first_attempt = pending.first_attempt_at or time.time()
    if time.time() - first_attempt >= settings.retry_for_seconds:
        log.error(
            "callback dead after %d attempts over %ds: %s; POST /v1/webhooks/deliveries/%s/retry re-sends it",
            pending.attempts + 1,
            settings.retry_for_seconds,
            error,
            pending.event_id,
            extra=context,
        )
        return outbox.dead(pending, error, hold) > 0
    delay = backoff_seconds(pending.attempts + 1, settings.backoff_base_seconds, settings.backoff_max_seconds)
    log.warning("callback failed (%s); retrying in %.1fs", error, delay, extra=context)
    outbox.retry_at(pending, time.time() + delay, error)
    return False
