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

A delivery resolves its URL's host once, checks every address (`dispatcher/callback_urls.py`) and
connects to a checked one: a name cannot pass the check with a public address and then have the
connection's own lookup answer a private one (DNS rebinding). The receiver's answer counts by its status;
at most ANSWER_MAX_BYTES of its body are read, and CALLBACK_TIMEOUT bounds the delivery from its lookup
to its answer's last byte (a stalled lookup cannot be cut, but nothing is sent after the deadline), so
neither a huge nor a dripping answer can hold a worker's memory or thread.
"""

from __future__ import annotations

import functools
import json
import logging
import socket
import time
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3

from dispatcher import signatures
from dispatcher.callback_urls import Address, Target, UnsafeUrl, check_resolved
from dispatcher.outbox import Pending
from dispatcher.settings import CallbackSettings
from providers.deadline import DeadlineAdapter, deadline
from tasks import runtime
from tasks.backoff import backoff_seconds
from tasks.celery_app import DELIVER_CALLBACKS, app

log = logging.getLogger(__name__)

# How long a chain is leased to the task delivering it; a task lost with it is replaced after that.
CHAIN_LEASE_SECONDS = 60
# One task keeps a chain this long at most, then hands it back, so one busy chain cannot hog a slot.
TASK_BUDGET_SECONDS = 20


# The most of a receiver's answer we read: its status decides, and a short body is read only so that its
# connection can serve the next delivery. A longer one ends the connection instead (a receiver answering
# 300 MiB once grew a worker by 600 MiB).
ANSWER_MAX_BYTES = 64 * 1024
_READ_CHUNK = 16 * 1024


class PinnedAdapter(DeadlineAdapter):
    """A DeadlineAdapter for requests sent to an address we checked instead of to a host name: the URL names
    the address, the Host header the host; over https the handshake names the host (SNI) and the certificate
    must be valid for it, as if we had connected by name."""

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if host_params["scheme"] == "https":
            # urllib3 takes server_hostname (its typing leaves it out of the pool keys it lists)
            pool_kwargs["server_hostname"] = urlsplit(f"//{request.headers['Host']}").hostname  # type: ignore[typeddict-unknown-key]
        return host_params, pool_kwargs


@functools.cache
def _session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = "whatsapp-dispatcher-callbacks"
    adapter = PinnedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def post(pending: Pending, settings: CallbackSettings) -> str | None:
    """POST one event, signed with its account's secret, to an address its URL was checked at; returns None on
    a 2xx answered in full within CALLBACK_TIMEOUT, else what went wrong. Raises UnsafeUrl."""
    secret = settings.secret_for(pending.account)
    if not secret:
        return "WEBHOOK_SECRET is not set on this worker: callbacks are never sent unsigned"
    body = json.dumps(pending.event, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Dispatcher-Event-Id": pending.event_id,
        "X-Dispatcher-Event-Type": pending.event.get("type", ""),
        **signatures.headers(secret, body),
    }
    timeout = settings.timeout_seconds
    failure: str | None
    with deadline(timeout) as call:  # CALLBACK_TIMEOUT bounds the whole delivery, however its answer trickles
        try:
            target = check_resolved(pending.url, settings.allowlist)
            status = _post_pinned(pending.url, target, body, headers, timeout, call)
        except socket.gaierror as error:
            return f"callback_url host does not resolve: {error}"  # tried again later, as a refused connection is
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
            failure = f"{type(error).__name__}: {error}"
        else:
            failure = None if 200 <= status < 300 else f"HTTP {status}"
    # A cut answer may look whole (a body read until the connection closes): the deadline decides.
    return f"no complete answer within {timeout:g} s" if call.expired else failure


def _post_pinned(url: str, target: Target, body: bytes, headers: dict, timeout: float, call) -> int:
    """POST to the target's checked addresses in turn, going on to the next only when one refuses the
    connection (as a client connecting by name would), never to a new lookup's; returns the answer's status."""
    for address in target.addresses[:-1]:
        try:
            return _post_to(address, url, target, body, headers, timeout)
        except requests.ConnectionError as error:
            if call.expired or not _never_connected(error):
                raise
    return _post_to(target.addresses[-1], url, target, body, headers, timeout)


def _post_to(address: Address, url: str, target: Target, body: bytes, headers: dict, timeout: float) -> int:
    """POST to one address, reading at most ANSWER_MAX_BYTES of the answer's body; returns its status."""
    pinned_url, host = _pinned(url, target, address)
    response = _session().post(
        pinned_url,
        data=body,
        headers={**headers, "Host": host},
        timeout=(min(timeout, 3.05), timeout),
        allow_redirects=False,
        stream=True,
    )
    _read_bounded(response)
    return response.status_code


def _pinned(url: str, target: Target, address: Address) -> tuple[str, str]:
    """The URL with `address` in place of its host, and the Host header naming the host (and its port)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (f"{userinfo}@" if userinfo else "") + _literal(str(address)) + port
    return urlunsplit(parts._replace(netloc=netloc)), _literal(target.host) + port


def _literal(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _never_connected(error: requests.ConnectionError) -> bool:
    """Whether the request failed before a connection was made (so nothing of it reached the receiver)."""
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(error, requests.ConnectTimeout) or isinstance(reason, urllib3.exceptions.NewConnectionError)


def _read_bounded(response: requests.Response) -> None:
    """Read at most ANSWER_MAX_BYTES of the body, as it came (never decompressed), then let the connection
    go: urllib3 puts it back in the pool once a body ended within that, and closing ends it otherwise."""
    try:
        read = 0
        while read <= ANSWER_MAX_BYTES and (chunk := response.raw.read(_READ_CHUNK, decode_content=False)):
            read += len(chunk)
    finally:
        response.close()


@app.task(name=DELIVER_CALLBACKS, acks_late=True, ignore_result=True)
def deliver_callbacks(chain: str) -> int:
    """Deliver the chain's events in order until it is empty, an event fails, or the budget is spent.
    Returns how many events were delivered."""
    outbox = runtime.services().outbox
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
        error = post(pending, settings)
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
