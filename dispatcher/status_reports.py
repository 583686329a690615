"""What the providers tell us after a send: status reports applied to messages, replies passed on.

The provider modules verify and parse their webhooks into `StatusReport` and `IncomingMessage`;
this module applies them to the store, each in one Lua script: find the message by the provider's id,
drop a report seen before, move the status forward only (`sent < delivered < read`; `failed` may
follow `sent` or `delivered`), keep the report in the message's history with the provider's time,
and queue the callback event, all atomically.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time

from dispatcher import history, redis_keys, statuses
from dispatcher.contacts import Contacts
from dispatcher.outbox import Outbox
from dispatcher.store import MessageStore
from dispatcher.times import iso
from providers.base import mask_phone
from providers.inbound import IncomingMessage, StatusReport

log = logging.getLogger(__name__)

# The statuses a report may move a message from. Our own record already says `sent` (the index of
# provider ids is written then), so a provider's `sent` only confirms it.
ALLOWED_FROM = {status: statuses.sources(status, statuses.WITH_PROVIDER) for status in statuses.ALL}
# A report that comes before we record `sent` waits this long for it (the window is a provider call's
# answer, a batch group's other calls and a record retried over a Redis blip: seconds, not minutes); a
# report for a message that is not ours expires after it.
EARLY_REPORT_SECONDS = 600
# Providers retry a webhook for up to a week (Meta); a reply seen within that time is a duplicate.
REMEMBER_REPLIES_SECONDS = 7 * 86400


def reply_chain(provider: str, phone: str, key: str) -> str:
    """The callback chain of one contact's replies through one provider, which keeps them in order.

    A chain's name is a Celery task's argument (Flower shows it and keeps it in its state file) and part of
    Redis keys, so it holds a keyed hash of the number (HMAC-SHA256 keyed by `key`, WEBHOOK_SECRET: without
    one it is a plain hash), never the number: stable per contact and provider, which is all the order
    needs. A chain named the old way (`in:<provider>:<E.164>`) still delivers, as nothing reads a name."""
    digest = hmac.new(key.encode(), phone.encode(), hashlib.sha256).hexdigest()[:32]
    return f"in:{provider}:{digest}"


class StatusReports:
    def __init__(
        self, store: MessageStore, outbox: Outbox, contacts: Contacts, default_callback_url: str, chain_key: str
    ):
        self.store = store
        self.outbox = outbox
        self.contacts = contacts
        self.default_callback_url = default_callback_url
        self.chain_key = chain_key  # keys the hash of a number in a reply chain's name (see reply_chain)
        self._report = store.script("report")

    def apply(self, report: StatusReport) -> str:
        """Apply one report; returns its outcome: ok, duplicate, same, stale, or parked (no message has that
        provider id yet: it is applied when one is recorded `sent`, or expires)."""
        now = self.store.clock()
        fields: list[str] = []
        error = None
        if report.status == statuses.FAILED:
            error = {"code": report.error_code, "message": report.error_message}
            fields = ["last_error", json.dumps({"kind": "provider", **error}, ensure_ascii=False)]
        step = history.report_step(report.status, now, report.provider, report.provider_status, report.at, error)
        outcome, *found = self._report(
            keys=[redis_keys.EARLY_REPORTS.key(report.provider, report.provider_message_id)],
            args=[
                report.provider,
                report.provider_message_id,
                report.status,
                ",".join(ALLOWED_FROM[report.status]),
                report.event_key,
                step,
                now,
                iso(now),
                EARLY_REPORT_SECONDS,
                *fields,
            ],
        )
        context = {"provider": report.provider, "status": report.status}
        if outcome == "parked":
            log.info(
                "%s reports %s for %s before we recorded it sent: kept for %d s, applied when it is",
                report.provider,
                report.status,
                report.provider_message_id,
                EARLY_REPORT_SECONDS,
                extra=context,
            )
        else:
            message_id, before = found
            context["message_id"] = message_id
            log.info("status report %s (was %s): %s", report.status, before, outcome, extra=context)
        return outcome

    def receive(self, incoming: IncomingMessage) -> tuple[str, list[str]]:
        """Pass a contact's reply on as a message.received event, and note what it says of its contact (the window
        it opens, an opt-out or opt-in keyword: dispatcher/contacts.py). Returns queued, duplicate or nowhere, and
        the accounts whose opt-out list the reply changed."""
        event = {
            "event_id": f"received.{incoming.provider}.{incoming.provider_message_id}",
            "type": "message.received",
            "provider": incoming.provider,
            "provider_message_id": incoming.provider_message_id,
            "from": incoming.from_phone,
            "to": incoming.to,
            "profile_name": incoming.profile_name or None,
            "text": incoming.text or None,
            "media": (
                {"url": incoming.media_url, "kind": incoming.media_kind, "mimetype": incoming.media_mimetype}
                if incoming.media_url
                else None
            ),
            "in_reply_to": None,
            "at": iso(incoming.at or time.time()),
        }
        outcome, answered, changed = self.outbox.receive(
            event,
            reply_chain(incoming.provider, incoming.from_phone, self.chain_key),
            self.default_callback_url,
            incoming.in_reply_to or "",
            REMEMBER_REPLIES_SECONDS,
            self.contacts.reply_contact(incoming),
        )
        context = {"provider": incoming.provider, "message_id": answered or None}
        if outcome == "nowhere":
            log.warning(
                "reply from %s dropped: no callback_url on the message it answers and no STATUS_WEBHOOK_URL",
                mask_phone(incoming.from_phone),
                extra=context,
            )
        else:
            log.info("reply from %s: %s", mask_phone(incoming.from_phone), outcome, extra=context)
        if changed:
            action = self.contacts.keyword_action(incoming.text)
            log.info("%s by reply: %s", action, mask_phone(incoming.from_phone), extra={"accounts": len(changed)})
        return outcome, changed
