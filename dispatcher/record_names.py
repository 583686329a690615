"""The names six fields of a message record are stored under in Redis: shorter than the names the code and the
API give them, because a record is kept for the whole retention and every byte of it counts.

The six long names took 55 bytes more of a sent bulk row's record, enough to keep its listpack (about 360 bytes)
in the allocator's 384-byte class rather than the 320-byte one below: 64 bytes a message (`python -m
bench.memory`: 638 → 574 bytes a bulk row, 541 → 478 a single send). The rest keep their names, so that
`redis-cli HGETALL` of a record still reads much as the API's fields.

A record written before this layout (2026-12-07) keeps its long names until it expires. Python reads either
through `readable`; the scripts ask for the short names and, only for a record written before, again for the
long ones (lib/record_names.lua).
"""

from __future__ import annotations

STORED = {
    "external_id": "ext",
    "recipient": "to",
    "fingerprint": "fp",
    "created_at": "t0",  # the time the steps' offsets count from (dispatcher/history.py)
    "provider_message_id": "pmid",  # as the provider ids' index calls it
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
