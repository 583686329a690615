"""One send, whichever task makes it: call the provider for a claimed message, sort the result, record it.

The single-message task and the batch chunk task both go through here, so a batch message and a
single message retry, fail and succeed alike.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import time
from dataclasses import dataclass

import redis

from dispatcher import statuses
from dispatcher.callback_urls import UnsafeUrl, check_resolved
from dispatcher.senders import SenderRegistry
from dispatcher.services import Services
from dispatcher.settings import Settings
from dispatcher.store import Claim, MessageStore, Move
from providers import OutboundMessage, PermanentProviderError, ProviderConfigurationError, TransientProviderError
from providers.base import Media, Template
from tasks.backoff import backoff_seconds

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What the provider's answer means for the message: `sent`, `retrying` (after `retry_in` s) or `failed`."""

    status: str
    provider_message_id: str = ""
    error: str = ""
    retry_in: float = 0.0
    seconds: float = 0.0  # how long the provider call took (the send latency /metrics shows)
    hold_sender_seconds: float = 0.0  # the provider throttles the sender: hold it back this long
    pause_sender: str = ""  # a pool's member cannot send any more: pause it (why), the message goes to another


def _error(error: Exception, kind: str) -> str:
    return json.dumps({"kind": kind, "code": getattr(error, "code", "") or type(error).__name__, "message": str(error)})


def outbound(claim: Claim) -> OutboundMessage:
    """The claimed message as the provider contract takes it."""
    media = json.loads(claim.media) if claim.media else None
    template = json.loads(claim.template) if claim.template else None
    return OutboundMessage(
        message_id=claim.message_id,
        recipient=claim.recipient,
        text=claim.body or "",
        external_id=claim.external_id,
        sender=claim.sender or "",
        media=Media(**media) if media else None,
        template=Template(**template) if template else None,
    )


def deliver(claim: Claim, services: Services) -> Outcome:
    """Send one claimed message through its provider and sort the answer, timing the call."""
    began = time.perf_counter()
    outcome = _send(claim, services)
    return dataclasses.replace(outcome, seconds=round(time.perf_counter() - began, 6))


def unsafe_media(claim: Claim, allowlist: tuple[str, ...]) -> str | None:
    """Why the message's media.url may not be fetched, or None. The provider fetches it (Evolution from inside
    our network), and the API judged only what the URL shows: its host name is resolved here, and every
    address must be public or allowed. (A name whose DNS answers differently to the provider a moment later
    can still pass: filter the Evolution host's outgoing traffic too.)"""
    url = (json.loads(claim.media) if claim.media else {}).get("url")
    if not url:
        return None
    try:
        check_resolved(url, allowlist, "media.url")
    except UnsafeUrl as unsafe:
        return str(unsafe)
    except socket.gaierror:
        return None  # nobody can fetch it: the provider's own answer says so
    return None


def _send(claim: Claim, services: Services) -> Outcome:
    settings = services.settings
    context = {"message_id": claim.message_id, "attempt": claim.attempt}
    unsafe = unsafe_media(claim, settings.callbacks.allowlist)
    if unsafe:
        log.warning("message failed: its media.url is refused: %s", unsafe, extra=context)
        error = {"kind": "permanent", "code": "unsafe_media_url", "message": unsafe}
        return Outcome(statuses.FAILED, error=json.dumps(error))
    try:
        catalog = services.catalog
        result = catalog.get(claim.provider or catalog.default).send(outbound(claim))
    except Exception as error:
        outcome = judge(error, claim.attempt, RetryPolicy.from_settings(settings), context, pooled=bool(claim.pool))
        if outcome.pause_sender:
            services.senders.pause(claim.provider, claim.sender or "", outcome.pause_sender)
        if outcome.hold_sender_seconds:
            services.store.hold_sender(claim.provider, claim.sender or "", outcome.hold_sender_seconds)
            log.warning(
                "the provider throttles sender %s/%s: every worker holds it back for %.1fs",
                claim.provider,
                claim.sender or "-",
                outcome.hold_sender_seconds,
                extra=context,
            )
        return outcome
    log.info("message sent", extra={**context, "status": statuses.SENT})
    return Outcome(statuses.SENT, provider_message_id=result.provider_message_id)


# How much of the provider's error a sender's paused_reason keeps (GET /v1/senders shows it).
PAUSE_REASON_CHARS = 300


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a message's provider call is tried (JOB_ATTEMPTS, JOB_BACKOFF_*)."""

    attempts: int
    base_seconds: float
    max_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(settings.job_attempts, settings.job_backoff_delay_ms / 1000, settings.job_backoff_max_ms / 1000)


def judge(
    error: Exception, attempt: int, policy: RetryPolicy, context: dict | None = None, pooled: bool = False
) -> Outcome:
    """What a failed call of attempt `attempt` means for the message: failed for good (the provider refuses it,
    or the service is misconfigured), or retried after a backoff until the budget is spent. A transient error
    and a bug in a provider alike get the budget; a throttled sender is held back, for every worker, as long
    as this message waits (`hold_sender_seconds`). A `pooled` message whose member cannot send any more (its
    number blocked, its instance gone) is retried at once through another member, and that one is paused
    (`pause_sender`). Decides only: the caller records, holds and pauses."""
    context = context or {}
    if pooled and getattr(error, "sender_down", False) and attempt < policy.attempts:
        log.warning("pool member cannot send: %s; the message goes to another member", error, extra=context)
        return Outcome(
            statuses.RETRYING,
            error=_error(error, "configuration"),
            retry_in=0.0,
            pause_sender=f"the provider refused the sender: {str(error)[:PAUSE_REASON_CHARS]}",
        )
    if isinstance(error, (PermanentProviderError, ProviderConfigurationError)):
        kind = "permanent" if isinstance(error, PermanentProviderError) else "configuration"
        level = logging.WARNING if kind == "permanent" else logging.ERROR
        log.log(level, "message failed (%s): %s", kind, error, extra={**context, "error_code": error.code})
        return Outcome(statuses.FAILED, error=_error(error, kind))
    if not isinstance(error, TransientProviderError):
        log.error("unexpected provider error", exc_info=error, extra=context)
    if attempt >= policy.attempts:
        log.warning("message failed after %d attempts: %s", attempt, error, extra=context)
        return Outcome(statuses.FAILED, error=_error(error, "transient"))
    retry_after = getattr(error, "retry_after", None)
    delay = backoff_seconds(attempt, policy.base_seconds, policy.max_seconds, retry_after)
    log.info("retrying in %.1fs: %s", delay, error, extra=context)
    throttled = getattr(error, "throttled", False)
    return Outcome(
        statuses.RETRYING,
        error=_error(error, "transient"),
        retry_in=delay,
        hold_sender_seconds=delay if throttled else 0,
    )


def note_recorded(answer: str, claim: Claim, senders: SenderRegistry) -> None:
    """Say what an operator must know about how an outcome was recorded: it auto-paused its sender
    (`advance` answered 'ok:paused': the pool messages waiting for that sender then go to other members), or
    it came too late to count ('stale': the call outlived its lease and another claim holds the message now,
    so this attempt's outcome is dropped)."""
    if answer == "stale":
        log.warning(
            "outcome of attempt %d not recorded: the message was claimed again while the call went on",
            claim.attempt,
            extra={"message_id": claim.message_id},
        )
    elif answer == "ok:paused":
        log.error(
            "sender %s/%s auto-paused: too many of its recent sends failed; its messages are held "
            "until POST /v1/senders/%s/%s/resume",
            claim.provider,
            claim.sender or "-",
            claim.provider,
            claim.sender or "-",
            extra={"message_id": claim.message_id},
        )
        senders.fail_over(claim.provider, claim.sender or "")


RECORD_RETRY_SECONDS = 30


def record_durably(store: MessageStore, message_id: str, outcome: Outcome, attempt: int) -> str:
    """`record`, tried again while Redis is unreachable (for up to RECORD_RETRY_SECONDS): the provider has
    answered, and an outcome lost to a Redis blip would turn into a resend once the lease ran out. A retry
    after a write that did happen (its reply was lost) finds the message already moved and changes nothing."""
    deadline = time.monotonic() + RECORD_RETRY_SECONDS
    pause = 0.1
    while True:
        try:
            return record(store, message_id, outcome, attempt)
        except (redis.ConnectionError, redis.TimeoutError):
            if time.monotonic() + pause > deadline:
                raise
            log.warning(
                "recording the outcome failed (Redis unreachable): trying again", extra={"message_id": message_id}
            )
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


def record(store: MessageStore, message_id: str, outcome: Outcome, attempt: int) -> str:
    """Write the outcome of `attempt` onto the message (see `outcome_move`); returns the move's answer."""
    return store.move([outcome_move(store, message_id, outcome, attempt)])[0]


def outcome_move(store: MessageStore, message_id: str, outcome: Outcome, attempt: int) -> Move:
    """The move that records the outcome of `attempt`: from `sending` only, and only while that attempt's
    claim still holds the message, so a late writer changes nothing ('stale')."""
    if outcome.status == statuses.SENT:
        fields: dict[str, str | float] = {"provider_message_id": outcome.provider_message_id}
        return Move(
            message_id, statuses.SENT, (statuses.SENDING,), attempt=attempt, send_seconds=outcome.seconds, fields=fields
        )
    if outcome.status == statuses.RETRYING:
        next_at = store.clock() + outcome.retry_in
        return Move(
            message_id,
            statuses.RETRYING,
            (statuses.SENDING,),
            pending_deadline=next_at + store.queued_grace_seconds,
            detail={"retry_in_seconds": round(outcome.retry_in, 3)},
            attempt=attempt,
            send_seconds=outcome.seconds,
            fields={"last_error": outcome.error, "next_attempt_at": next_at},
        )
    return Move(
        message_id,
        statuses.FAILED,
        (statuses.SENDING,),
        attempt=attempt,
        send_seconds=outcome.seconds,
        fields={"last_error": outcome.error},
    )


def hand_back_move(store: MessageStore, claim: Claim) -> Move:
    """The move that gives back a claimed row that was never sent (its worker is stopping): `retrying`, due
    now, with the attempt it claimed not counted, so another worker sends it at once and LEASE_EXPIRED_ACTION
    never sees it as a send that may have gone out."""
    now = store.clock()
    return Move(
        claim.message_id,
        statuses.RETRYING,
        (statuses.SENDING,),
        pending_deadline=now + store.queued_grace_seconds,
        detail={"reason": "handed back unsent: its worker is stopping"},
        attempt=claim.attempt,
        fields={"attempts": claim.attempt - 1, "next_attempt_at": now},
    )
