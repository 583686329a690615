"""Accounts: who owns a message, and which keys speak for whom.

`API_KEY` lists the keys callers send in `X-API-Key`, separated by commas. An entry `account:key`
puts the key in a named account: every key of one account sees the same messages, batches, failures
and callback deliveries, and an `external_id` sent again under another key of that account is the
same message. That is how a key is rotated without a second send: add `reach:new` beside
`reach:old`, move the clients, remove the old entry.

A plain `key` entry is an account of its own, named by the key's id (`key_id`: a hash, never the
key), which is the scope every record stored before accounts existed already carries. Writing
`<that id>:<key>` therefore moves a plain key into a named account without losing its history,
and `<that id>:<another key>` adds a second key to it.

`ADMIN_API_KEY` lists the operators' keys (no account: operators act on the service, not as a
tenant), for the routes that change or show what every account shares.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# An account name becomes part of Redis key names (`dispatch:optouts:<account>`, ...): no colon,
# nothing that needs quoting, and short.
ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class ApiKey:
    """One configured key and the account it speaks for."""

    key: str
    account: str


def key_id(key: str) -> str:
    """A stable, non-secret name for an API key: the account of a plain `key` entry."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def parse_api_keys(entries: list[str]) -> tuple[ApiKey, ...]:
    """`key` and `account:key` entries; raises ValueError naming what is wrong with one."""
    keys = []
    for entry in entries:
        account, colon, key = entry.partition(":")
        if not colon:
            keys.append(ApiKey(key=entry, account=key_id(entry)))
            continue
        account, key = account.strip(), key.strip()
        if not ACCOUNT_NAME.match(account):
            raise ValueError(
                f"account name {account!r} must be letters, digits, '.', '_' or '-' (at most 64, no colon)"
            )
        if not key:
            raise ValueError(f"account {account!r} has an empty key")
        keys.append(ApiKey(key=key, account=account))
    return tuple(keys)


def owner(record: dict) -> str | None:
    """The account a stored record (message or batch) belongs to.

    Records written before accounts existed name it `key_id`, which holds the plain key's account. Once
    none can remain (a message waits at most MESSAGE_RETENTION_DAYS and is kept as long after it
    finishes), this fallback can go.
    """
    return record.get("account") or record.get("key_id")
