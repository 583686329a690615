"""The names five fields of a message record are stored under in Redis: shorter than the names the code and the
API give them, because a record is kept for the whole retention and every byte of it counts.

The five long names took 48 bytes of a sent bulk row's record: enough to put its listpack (356 bytes) one of
Redis's allocation classes up, 384 bytes, not 320 (64 bytes a message; `python -m bench.memory`). The rest keep
their names, so that `redis-cli HGETALL dispatch:msg:<id>` still reads as the API's fields.

A record written before this layout (2026-12-07) keeps its long names until it expires: every reader takes
either, the scripts as they take `key_id` for `account` (the new name first, then the old one, in the same
HMGET: see the Lua scripts that read `ext`, `fp`, `t0`, `pmid` or `fday`), and Python through `readable`.
"""

from __future__ import annotations

STORED = {
    "external_id": "ext",
    "recipient": "to",
    "fingerprint": "fp",
    "created_at": "t0",  # the time the steps' offsets count from (dispatcher/history.py)
    "provider_message_id": "pmid",  # as in the provider ids' index, dispatch:pmids
    "finished_day": "fday",
}
_READABLE = {stored: name for name, stored in STORED.items()}


def stored(fields: dict) -> dict:
    """`fields`, named as the record stores them."""
    return {STORED.get(name, name): value for name, value in fields.items()}


def readable(record: dict) -> dict:
    """A record as Redis returned it, with its fields' whole names, whether it was written with the short names,
    the long ones, or (a record written before, moved since) some of each, the short name then being the later."""
    whole = {name: value for name, value in record.items() if name not in _READABLE}
    whole.update((_READABLE[name], value) for name, value in record.items() if name in _READABLE)
    return whole
