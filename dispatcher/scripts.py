"""Every Lua script of `dispatcher/lua/`, in one table, and the one way any of them reaches Redis.

Each change to Redis that must be atomic is one script. Redis runs a script as one text with no imports,
so the code scripts share lives in libraries (`dispatcher/lua/lib/`), each one concern, and a script is
sent as: a generated preamble (the lifecycle table of `dispatcher.statuses`, RETENTION and POOL_STICKY), the libraries
it needs, then the script itself. A Lua local exists only below its definition, so the libraries go in
the order of `LIBRARIES`, where each comes after those it uses. `tests/test_scripts.py` checks both tables
against the Lua: every script is listed, and each one names what it calls, no more. A script that moves
messages (its libraries include lifecycle) runs wrapped, so that the counters and watches its moves gathered are
written once at its end, even when it stops with an error.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import redis
from redis.commands.core import Script

from dispatcher import statuses

_LUA = Path(__file__).with_name("lua")

# Library → the libraries it calls, in the order they are prepended (each after what it calls).
LIBRARIES: dict[str, tuple[str, ...]] = {
    "record_names": (),  # a record's fields as written before their short names (dispatcher/record_names.py)
    "retention": (),  # how long what finished on a day is kept
    "quotas": (),  # an account's request rate and daily count
    "outbox": ("record_names",),  # queuing callback events: a message's status, a batch's completion, dead deliveries
    "packed": (),  # message ids and digests as bytes, where a list or an index holds one a message
    # a value → what it finds, kept by the day (provider ids, whose a reply is)
    "day_index": ("record_names", "retention", "packed"),
    "lifecycle": ("record_names", "outbox", "retention"),  # a message's moves, its counters, its retention, a claim
    "reports": ("lifecycle",),  # a provider's status reports, applied or parked
    "senders": (),  # a sender's id in key names, its settings, its auto-pause
    "validity": ("lifecycle", "senders"),  # a waiting message past its expires_at becomes expired
    "pacing": ("lifecycle", "senders"),  # a sender's pace, daily cap and warm-up
    "pools": ("record_names", "lifecycle", "senders", "pacing"),  # a pool's message given its member
    "contacts": ("outbox", "day_index"),  # opt-outs, the 24-hour window, a contact's day, whose a reply is
    "contact_claims": ("lifecycle", "senders", "contacts"),  # a contact's rules again at the claim
    "content": (),  # what a message says, in its own key
}

# Script → the libraries it calls (the ones those call come with them).
SCRIPTS: dict[str, tuple[str, ...]] = {
    # accepting (dispatcher/store.py, dispatcher/quotas.py)
    "create": ("quotas", "contacts", "content"),
    "create_rows": ("record_names", "contacts", "content"),
    "start_batch": (),
    "admit_request": ("quotas",),
    "admit_messages": ("quotas",),
    # sending (dispatcher/store.py)
    "claim": ("record_names", "lifecycle", "pools", "validity", "contact_claims", "content"),
    "claim_group": ("record_names", "lifecycle", "pools", "validity", "contact_claims", "content"),
    "advance": ("record_names", "lifecycle", "reports", "senders", "contacts", "day_index"),
    "keep": (),
    "unlock": (),
    "pop_due": (),
    "rearm": (),
    "expire_due": ("lifecycle", "validity"),
    "hold_sender": (),
    # operators (dispatcher/store.py, dispatcher/failed_messages.py, dispatcher/senders.py)
    "cancel": ("lifecycle",),
    "cancel_batch": ("lifecycle", "packed"),
    "set_batch_state": (),
    "retry": ("record_names", "lifecycle"),
    "resume_sender": (),
    # sender pools (dispatcher/pools.py)
    "fail_over": (),
    "release_pool": (),
    # provider webhooks (dispatcher/status_reports.py)
    "report": ("reports", "day_index"),
    # the callback outbox (dispatcher/outbox.py)
    "receive": ("record_names", "outbox", "contacts", "day_index"),
    # contacts' rules (dispatcher/contacts.py)
    "set_opt_out": ("contacts",),
    "take_chains": (),
    "settle_head": ("outbox",),
    "revive": ("outbox",),
}


def libraries_of(name: str) -> list[str]:
    """The libraries script `name` is sent with, those they call included, in `LIBRARIES`' order."""
    wanted: set[str] = set()
    todo = list(SCRIPTS[name])
    while todo:
        library = todo.pop()
        if library not in wanted:
            wanted.add(library)
            todo.extend(LIBRARIES[library])
    return [library for library in LIBRARIES if library in wanted]


# A script that moves messages runs as this function's body, so that what its moves gathered (lib/lifecycle.lua:
# flush_deferred: counters, the reconciler's watch) is written when it ends, whether it returns or stops with an error.
_COUNTED = """local function script()
{body}
end
local done, result = pcall(script)
flush_deferred()
if not done then error(result, 0) end
return result"""


@cache
def source(name: str, retention_seconds: int, sticky_seconds: int = 0) -> str:
    """The text Redis runs for script `name`: the preamble, its libraries, the script."""
    constants = f"local RETENTION = {int(retention_seconds)}\nlocal POOL_STICKY = {int(sticky_seconds)}\n"
    libraries = libraries_of(name)
    parts = [statuses.lua_preamble() + constants]
    parts += [(_LUA / "lib" / f"{library}.lua").read_text() for library in libraries]
    body = (_LUA / f"{name}.lua").read_text()
    parts.append(_COUNTED.format(body=body) if "lifecycle" in libraries else body)
    return "\n".join(parts)


def register(client: redis.Redis, name: str, retention_seconds: int = 0, sticky_seconds: int = 0) -> Script:
    """Script `name` (a key of `SCRIPTS`) on `client`. Registering costs no round trip: redis-py sends the
    text on the first call only, when Redis does not know its hash yet. `retention_seconds` is required by the
    scripts that keep anything by the day (lib/retention.lua: a finished message, a day's index), and
    `sticky_seconds` by the one that records a pool's sticky sender (advance.lua, POOL_STICKY_DAYS)."""
    if retention_seconds <= 0 and "retention" in libraries_of(name):
        raise ValueError(f"script {name} keeps things by the day: it needs MESSAGE_RETENTION_DAYS")
    return client.register_script(source(name, retention_seconds, sticky_seconds))
