"""The per-message task: claim the message, call the provider, record what happened.

The claim (queued/retrying → sending, with a lease) is what makes a task delivered twice send
once; the provider's error class decides between retrying and failing. Attempts are counted on the
message record, not by Celery, so a task republished by the reconciler keeps the same budget.
"""

from __future__ import annotations

import json
import logging
import random
import time

from dispatcher import statuses
from providers import (
    OutboundMessage,
    PermanentProviderError,
    ProviderConfigurationError,
    ProviderError,
    TransientProviderError,
)
from tasks import runtime
from tasks.celery_app import SEND_MESSAGE, app

log = logging.getLogger(__name__)


def backoff_seconds(attempt: int, base_ms: int, max_ms: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter: about base·2^(attempt-1), between half and all of it, capped.

    A provider's own Retry-After wins when it asks for longer.
    """
    ceiling = min(max_ms, base_ms * 2 ** (attempt - 1)) / 1000
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    return max(delay, retry_after or 0)


def _error(error: ProviderError | Exception, kind: str) -> str:
    return json.dumps({"kind": kind, "code": getattr(error, "code", "") or type(error).__name__, "message": str(error)})


@app.task(name=SEND_MESSAGE, bind=True, acks_late=True, max_retries=None, ignore_result=True)
def send_message(self, message_id: str) -> str:
    settings = runtime.settings()
    store = runtime.store()
    context = {"message_id": message_id}
    claim = store.claim(message_id, take_over_expired=settings.lease_expired_action == "resend")
    if claim.outcome == "lease_expired":
        # The worker that held it died after (maybe) calling the provider: LEASE_EXPIRED_ACTION=fail
        # prefers never sending twice over never losing one.
        store.advance(
            message_id,
            statuses.FAILED,
            (statuses.SENDING,),
            last_error=json.dumps({"kind": "ambiguous", "code": "lease_expired", "message": "worker died mid-send"}),
        )
        log.error("message failed: its worker died mid-send and LEASE_EXPIRED_ACTION=fail", extra=context)
        return statuses.FAILED
    if not claim.claimed:
        if claim.outcome == "missing":
            store.forget_pending(message_id)
        log.info("task skipped: message is %s", claim.outcome, extra=context)
        return claim.outcome

    outbound = OutboundMessage(message_id, claim.recipient, claim.body, claim.external_id)
    context["attempt"] = claim.attempt
    try:
        result = runtime.provider().send(outbound)
    except (PermanentProviderError, ProviderConfigurationError) as error:
        kind = "permanent" if isinstance(error, PermanentProviderError) else "configuration"
        store.advance(message_id, statuses.FAILED, (statuses.SENDING,), last_error=_error(error, kind))
        level = logging.WARNING if kind == "permanent" else logging.ERROR
        log.log(level, "message failed (%s): %s", kind, error, extra={**context, "error_code": error.code})
        return statuses.FAILED
    except Exception as error:  # transient, or a bug in a provider: both get the retry budget
        if not isinstance(error, TransientProviderError):
            log.exception("unexpected provider error", extra=context)
        if claim.attempt >= settings.job_attempts:
            store.advance(message_id, statuses.FAILED, (statuses.SENDING,), last_error=_error(error, "transient"))
            log.warning("message failed after %d attempts: %s", claim.attempt, error, extra=context)
            return statuses.FAILED
        retry_after = getattr(error, "retry_after", None)
        delay = backoff_seconds(claim.attempt, settings.job_backoff_delay_ms, settings.job_backoff_max_ms, retry_after)
        next_at = time.time() + delay
        store.advance(
            message_id,
            statuses.RETRYING,
            (statuses.SENDING,),
            pending_deadline=next_at + settings.queued_republish_after_seconds,
            detail={"retry_in_seconds": round(delay, 3)},
            last_error=_error(error, "transient"),
        )
        log.info("retrying in %.1fs: %s", delay, error, extra=context)
        raise self.retry(countdown=delay, exc=error) from None

    store.advance(
        message_id,
        statuses.SENT,
        (statuses.SENDING,),
        detail={"provider_message_id": result.provider_message_id},
        provider_message_id=result.provider_message_id,
    )
    log.info("message sent", extra={**context, "status": statuses.SENT})
    return statuses.SENT
