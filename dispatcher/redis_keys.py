"""Every Redis key the dispatcher keeps, in one table: its name, its type, and why it exists.

All of them live under `dispatch:`. A family's pattern names, between `<` and `>`, each part the caller fills
in (`Family.key`). The Python code builds its keys here; the Lua scripts (`dispatcher/lua/`) build the same
names themselves, so `tests/test_redis_keys.py` reads every `dispatch:` name in dispatcher/, tasks/ and the
Lua and fails on one this table does not declare: a new family cannot go unlisted.

Retention: a message's record and its history (its log) are kept while it waits and
MESSAGE_RETENTION_DAYS after the UTC day it finished (`set_retention` in lua/lib/lifecycle.lua), as are its
batch's keys and that day's counts. Its content (the text) goes when it finishes, unless it failed: nothing
but a send reads it. Memory is what a deployment pays for first (docs/performance.md): Redis stores a hash
whose values are all within `hash-max-ziplist-value` (64 bytes by default) compactly, at about half the size,
so the long texts a message is sent with live in their own key, not in its record.

A sender id is `<provider>:<sender>` with the sender's `%` and `:` percent-encoded
(`dispatcher.senders.sender_id`), an account name has no colon (`dispatcher.accounts`).

Beside these, the same Redis holds Celery's own keys, which are not ours to name: the task queues (lists
named QUEUE_NAME and CALLBACK_QUEUE_NAME) and kombu's bindings (no unacked sets: celeryconfig.py turns kombu's ack
emulation off).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PREFIX = "dispatch:"
_PART = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class Family:
    pattern: str  # after PREFIX; `<...>` for each part the caller fills in
    type: str
    why: str
    _pieces: list[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_pieces", _PART.split(PREFIX + self.pattern))

    @property
    def prefix(self) -> str:
        """The name up to its first part: what a key of the family starts with (to scan for them, or to
        have a script append the rest)."""
        return self._pieces[0]

    def key(self, *parts: object) -> str:
        """The key of these parts, in the pattern's order."""
        if len(parts) != len(self._pieces) - 1:
            raise TypeError(f"{self.pattern} takes {len(self._pieces) - 1} parts, not {len(parts)}")
        return "".join(piece + str(part) for piece, part in zip(self._pieces, parts, strict=False)) + self._pieces[-1]

    def matches(self, key: str) -> bool:
        return re.fullmatch(".+".join(map(re.escape, self._pieces)), key) is not None


# --- messages (dispatcher/store.py) ---
MESSAGE = Family(
    "msg:<message id>",
    "hash",
    "the message record: its recipient, route, status, attempts, last error, times, and its history while it "
    "is short (`steps`, dispatcher/history.py); six fields under short names (`ext`, `to`, `fp`, `t0`, `pmid`, "
    "`fday`: dispatcher/record_names.py)",
)
CONTENT = Family(
    "msg:<message id>:content",
    "string",
    "what the message says (JSON: body, and media, template, fallback_template as stored JSON): kept while it can "
    "still be sent, dropped when it finishes but as `failed` (an operator may retry it)",
)
HISTORY = Family(
    "msg:<message id>:log",
    "string",
    "the message's history once it no longer fits its record (dispatcher/history.py): a step a line, oldest "
    "first (a string costs Redis a third of what a list of the same entries does)",
)
HISTORY_LIST = Family(
    "msg:<message id>:history",
    "list",
    "the history of a message accepted before the log (one JSON entry an item): read before its log, no longer "
    "written, gone with those messages",
)
EXTERNAL_ID = Family(
    "ext:<account>:<external id>",
    "string",
    "the message an account's external_id names, for messages accepted before a message's id followed from its "
    "external_id (dispatcher/names.py): read by a replay, no longer written, gone with those messages",
)
PROVIDER_IDS = Family(
    "pmids:<provider>:<day>:<bucket>",
    "hash",
    "our message ids for the provider's (its webhooks name theirs), of messages sent that UTC day (days since "
    "1970), a 4096th of them a hash (lua/lib/day_index.lua); digests and ids packed as bytes (lua/lib/packed.lua)",
)
PROVIDER_ID = Family(
    "pmid:<provider>:<provider message id>",
    "string",
    "our message id for the provider's, for messages sent before PROVIDER_IDS: read, no longer written, gone "
    "with those messages",
)
EARLY_REPORTS = Family(
    "early:<provider>:<provider message id>",
    "list",
    "a provider's reports that came before we recorded `sent`, applied then (a while, then they expire)",
)
PENDING = Family(
    "pending",
    "sorted set",
    "unfinished work (message ids, `chunk:<batch>:<start>:<stop>`, `accept:<batch>`) by the time something "
    "should have happened to it: the reconciler republishes what is overdue",
)
DUE = Family("due", "sorted set", "messages held for their pacing slot or their retry, by when they are due")
SCHEDULED = Family("scheduled", "sorted set", "messages and batch chunks held until their send_at (or the window)")
EXPIRING = Family(
    "expiring",
    "sorted set",
    "messages with a validity, by their expires_at: the reconciler expires those still waiting then (members "
    "that finished otherwise stay until that time, and are dropped then)",
)
FAILED = Family("failed", "sorted set", "failed messages by when they failed: the operators' list, by time")
COUNTS = Family("counts", "hash", "unfinished messages by status")
DAY_COUNTS = Family(
    "counts:<day>", "hash", "messages finished on that UTC day (days since 1970) by status; expires with them"
)
CHUNK_LOCK = Family("lock:<chunk member>", "string", "the task running a batch chunk now (its token), for a lease")

# --- batches (dispatcher/store.py) ---
BATCH = Family("batch:<batch id>", "hash", "a batch: state, total, count_<status>, finished, times, callback_url")
BATCH_MESSAGES = Family(
    "batch:<batch id>:messages",
    "list",
    "the batch's message ids, in row order, each packed into 16 bytes (lua/lib/packed.lua; text in lists written "
    "before)",
)
BATCH_RATE = Family("batch:<batch id>:rate", "hash", "messages finished per unix second, for the last two minutes")
BATCHES = Family(
    "batches",
    "sorted set",
    "every batch, newest last (scored by its accept deadline: its creation plus a constant), for the operators' "
    "console; a batch whose keys expired is dropped when a page reads it",
)

# --- senders (dispatcher/senders.py, lua/lib/pacing.lua, lua/lib/senders.lua) ---
SENDER = Family("sender:<sender id>", "hash", "a sender's own rate, burst, cap, warm-up and state (paused, why)")
SENDER_HELD = Family("sender:<sender id>:held", "set", "messages held while the sender is paused")
SENDER_OUTCOMES = Family("sender:<sender id>:outcomes", "list", "the sender's last outcomes (1 failed), for auto-pause")
PACE = Family("pace:<sender id>", "string", "the sender's next free slot (GCRA), shared by every worker")
SENT_TODAY = Family("sent-today:<sender id>:<day>", "string", "messages counted against the sender's daily cap")
SENDER_RESERVED = Family(
    "sender:<sender id>:reserved",
    "sorted set",
    "pool messages waiting for this sender's slot, by slot: handed back to the pool if the sender falls",
)
SENDER_POOLS = Family("sender:<sender id>:pools", "set", "the pools this sender is a member of")

# --- sender pools (dispatcher/pools.py, lua/lib/pools.lua) ---
POOLS = Family("pools", "set", "every pool's name")
POOL = Family("pool:<pool>", "hash", "a pool: its members (JSON: provider, sender, weight), sticky, when saved")
POOL_HELD = Family("pool:<pool>:held", "set", "messages held because no member of the pool can send")
POOL_PICKS = Family("pool:<pool>:picks", "hash", "sender id → messages given to that member, for the weights")
POOL_SENT = Family("pool:<pool>:sent", "hash", "sender id → messages that member sent for the pool")
STICKY = Family(
    "sticky:<account>:<pool>:<recipient>",
    "string",
    "the member that last wrote to this recipient for the account (a sticky pool); expires after POOL_STICKY_DAYS",
)

# --- contacts' rules (dispatcher/contacts.py, lua/lib/contacts.lua) ---
OPT_OUTS = Family("optouts:<account>", "sorted set", "the account's opted-out numbers (E.164), by when they opted out")
CONTACT_LOG = Family(
    "contact:<account>:<recipient>", "list", "the contact's opt-outs and opt-ins for the account, newest first (JSON)"
)
CONTACT_DAY = Family(
    "contact-day:<account>:<day>", "hash", "recipient → the account's messages to it that UTC day (CONTACT_DAILY_CAP)"
)
WINDOW = Family(
    "window:<sender id>:<day>",
    "hash",
    "recipient → when it last wrote to the sender that UTC day: today's and yesterday's hold every open 24-hour "
    "window; each expires the day after",
)
REACH = Family(
    "reach:<recipient>",
    "hash",
    "in:<sender id> → when the contact last wrote to that sender (for its view); kept MESSAGE_RETENTION_DAYS "
    "(by:<sender id>, the account that last sent to it from there, is SENT_TO's now: read, no longer written)",
)
SENT_TO = Family(
    "sent-to:<sender id>:<day>:<bucket>",
    "hash",
    "whose a reply is: numbers (a digest, packed as bytes) → the account that last sent to them from that sender "
    "that UTC day, a 4096th of them a hash (lua/lib/day_index.lua)",
)
SENDER_ACCOUNTS = Family("sender:<sender id>:accounts", "set", "the accounts that have sent from this sender")

# --- quotas (dispatcher/quotas.py) ---
REQUEST_BUCKET = Family("quota:<account>:requests", "string", "when the account's next request is due (GCRA)")
DAILY_COUNT = Family("quota:<account>:messages:<day>", "string", "the account's new messages that UTC day")

# --- the callback outbox (dispatcher/outbox.py, lua/lib/outbox.lua) ---
CALLBACK_CHAIN = Family("cb:chain:<chain>", "list", "events waiting for delivery in order, oldest first (JSON)")
CALLBACKS_DUE = Family("cb:due", "sorted set", "chains holding events, by when they should next be tried")
CALLBACK_LOCK = Family("cb:lock:<chain>", "string", "the task delivering the chain now (its token)")
DEAD = Family("cb:dead", "hash", "event id → a delivery that gave up, until an operator re-sends it or it expires")
DEAD_BY_TIME = Family("cb:dead:by-time", "sorted set", "dead event ids by when they died (pages, expiry)")
ACCOUNT_DEAD_BY_TIME = Family("cb:dead:by-time:<account>", "sorted set", "the same, of one account's deliveries")
REPLY_SEEN = Family("seen:<event id>", "string", "a contact's reply already passed on: a provider's retry is none")

# --- metrics (dispatcher/metrics.py): totals /metrics shows, never decremented ---
METRICS = Family("metrics", "hash", "counters with no labels (sender_auto_pauses_total)")
METRICS_STATUSES = Family("metrics:statuses", "hash", "messages that reached each status, by provider and sender")
METRICS_LATENCY = Family("metrics:latency", "hash", "provider call seconds, as histogram buckets per provider")
METRICS_REPORTS = Family("metrics:reports", "hash", "provider webhook reports by provider and outcome")
METRICS_CALLBACKS = Family("metrics:callbacks", "hash", "callback delivery outcomes")

# --- workers (dispatcher/worker_registry.py, tasks/worker_hooks.py) ---
WORKERS = Family("workers", "sorted set", "worker name → its last heartbeat (unix seconds), for /health/ready")
WORKER_QUEUES = Family("workers:queues", "hash", "worker name → the queues it consumes, comma-separated")
RECONCILER_LOCK = Family("reconciler:lock", "string", "the one worker running the reconciler loop now")

FAMILIES: tuple[Family, ...] = tuple(value for value in dict(globals()).values() if isinstance(value, Family))
