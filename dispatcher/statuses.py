"""A message's and a batch's life: the one table of statuses and the moves between them.

In words: a message is accepted `queued` (or `scheduled`, for later); a claim moves it to `sending`;
the provider's answer moves it to `sent`, `retrying` (a transient error with attempts left, which is
claimed again when due) or `failed`; the provider's webhooks move a sent one on to `delivered`, `read`
or a late `failed`; any message still waiting can be `canceled`, or becomes `expired` once its validity
(`valid_for`, `expires_at`) has passed unsent; an operator's retry takes a `failed` one back to `queued`.
`MOVES` below is the rule, to the letter.

This module is the rule's one home. The Lua scripts that change statuses get it as a generated
preamble (`lua_preamble`, prepended by `dispatcher.scripts`): `move()` in lua/lib/lifecycle.lua refuses
any move the table does not allow, and the scripts ask WAITING / FINISHED instead of naming statuses.
`tests/test_lifecycle.py` walks every pair of the table against the scripts.
"""

from __future__ import annotations

SCHEDULED = "scheduled"
QUEUED = "queued"
SENDING = "sending"
RETRYING = "retrying"
SENT = "sent"
DELIVERED = "delivered"
READ = "read"
FAILED = "failed"
CANCELED = "canceled"
EXPIRED = "expired"

ALL = (SCHEDULED, QUEUED, SENDING, RETRYING, SENT, DELIVERED, READ, FAILED, CANCELED, EXPIRED)

# Waiting to be sent: a claim may take it, a cancel may end it, the send window may hold it (→ scheduled).
WAITING = (SCHEDULED, QUEUED, RETRYING)
# Sending is over: the message counts as finished for its batch, its retention starts, its callback goes.
FINISHED = (SENT, DELIVERED, READ, FAILED, CANCELED, EXPIRED)
# The provider has the message: its webhooks may report on it.
WITH_PROVIDER = (SENT, DELIVERED, READ)

# A waiting message past its validity → expired; never one being sent: the provider may already have it.
MOVES: dict[str, tuple[str, ...]] = {
    SCHEDULED: (SENDING, CANCELED, SCHEDULED, EXPIRED),
    QUEUED: (SENDING, CANCELED, SCHEDULED, EXPIRED),
    RETRYING: (SENDING, CANCELED, SCHEDULED, EXPIRED),
    # sending → sending: a claim whose worker died is taken over; → failed also when the lease ran out with
    # LEASE_EXPIRED_ACTION=fail or the batch was canceled meanwhile; → retrying also when handed back unsent.
    SENDING: (SENT, RETRYING, FAILED, SENDING),
    SENT: (DELIVERED, READ, FAILED),
    DELIVERED: (READ, FAILED),
    READ: (),
    FAILED: (QUEUED,),  # an operator's retry
    CANCELED: (),
    EXPIRED: (),
}

# Batches: accepting (rows being written) → running ⇄ paused, → canceled, → completed when every row has
# finished (reopened, → running, when an operator retries its failed rows). Canceling a canceled batch goes
# on canceling any row left waiting.
ACCEPTING, RUNNING, PAUSED, COMPLETED = "accepting", "running", "paused", "completed"
BATCH_MOVES: dict[str, tuple[str, ...]] = {
    ACCEPTING: (RUNNING,),
    RUNNING: (PAUSED, CANCELED, COMPLETED),
    PAUSED: (RUNNING, CANCELED, COMPLETED),
    COMPLETED: (RUNNING,),
    CANCELED: (CANCELED,),
}


def sources(target: str, among: tuple[str, ...] = ALL) -> tuple[str, ...]:
    """The statuses (of `among`) a message may move to `target` from."""
    return tuple(status for status in among if target in MOVES[status])


def batch_sources(target: str) -> tuple[str, ...]:
    """The batch states a batch may move to `target` from."""
    return tuple(state for state, moves in BATCH_MOVES.items() if target in moves)


def _lua_set(names) -> str:
    return "{" + ", ".join(f"{name} = true" for name in names) + "}"


def _lua_moves(moves: dict[str, tuple[str, ...]]) -> str:
    """One flat set of `old>new` names. Redis runs a script's preamble again at every call, and one table of 22
    entries costs it about 3 µs less a call than eleven nested tables (docs/performance.md)."""
    return "{" + ", ".join(f"['{old}>{new}'] = true" for old, targets in moves.items() for new in targets) + "}"


def lua_preamble() -> str:
    """The table above as Lua locals, for the scripts: MOVES[old .. '>' .. new] is true for an allowed move."""
    return (
        f"local MOVES = {_lua_moves(MOVES)}\n"
        f"local BATCH_MOVES = {_lua_moves(BATCH_MOVES)}\n"
        f"local WAITING = {_lua_set(WAITING)}\n"
        f"local FINISHED = {_lua_set(FINISHED)}\n"
    )
