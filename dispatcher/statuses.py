"""The closed vocabulary of message statuses and the order they move in.

    queued ──▶ sending ──▶ sent ──▶ delivered ──▶ read
      │  ▲        │
      │  └─ retrying (transient error, attempts left)
      │           └──▶ failed (permanent error, or attempts exhausted)
      └──▶ canceled

Status only moves forward; the store's scripts enforce it atomically in Redis, using the sets below.
"""

QUEUED = "queued"
SENDING = "sending"
RETRYING = "retrying"
SENT = "sent"
DELIVERED = "delivered"
READ = "read"
FAILED = "failed"
CANCELED = "canceled"

ALL = (QUEUED, SENDING, RETRYING, SENT, DELIVERED, READ, FAILED, CANCELED)

# A task may claim a message for sending only from these.
CLAIMABLE = (QUEUED, RETRYING)
# Nothing more will be sent for a message in one of these.
FINISHED = (SENT, DELIVERED, READ, FAILED, CANCELED)
# The reconciler watches these: a message left in one of them too long lost its task.
PENDING = (QUEUED, SENDING, RETRYING)
