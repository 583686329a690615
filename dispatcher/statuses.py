"""The closed vocabulary of message statuses and the order they move in.

    (scheduled ──▶) queued ──▶ sending ──▶ sent ──▶ delivered ──▶ read
      │  ▲        │
      │  └─ retrying (transient error, attempts left)
      │           └──▶ failed (permanent error, or attempts exhausted)
      └──▶ canceled

Status only moves forward; the store's Lua scripts enforce it atomically in Redis: a task claims
only a queued or retrying message, and each later step names the statuses it may start from.
"""

SCHEDULED = "scheduled"
QUEUED = "queued"
SENDING = "sending"
RETRYING = "retrying"
SENT = "sent"
DELIVERED = "delivered"
READ = "read"
FAILED = "failed"
CANCELED = "canceled"

ALL = (SCHEDULED, QUEUED, SENDING, RETRYING, SENT, DELIVERED, READ, FAILED, CANCELED)
