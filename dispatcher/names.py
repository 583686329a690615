"""Names that arrive in requests or settings and become part of a provider's URL path or of a Redis key: the
form each must have, in one place, so every door that lets one in applies the same rule.

- An Evolution instance name is a segment of Evolution's URL paths (`/message/sendText/<name>`, ...) and
  of its session folders. Evolution itself takes any non-empty string, so its own routes are reachable
  with a name such as `../instance/delete/loja-1`; ours are the names that stay one plain segment.
- Any other sender (a Twilio number or service, a Meta phone-number id, a bridge's own label) is free text
  within limits: it is encoded where it becomes part of a key (`dispatcher.senders.sender_id`), and is a
  label in /metrics, where a tab would split it.
- Message and batch ids are ours (`msg-<uuid>`, `batch-<uuid4>`): an id from a path that does not have that
  form names no message or batch, and must not name another key (`<message id>:log`, `<message id>:content`).
- An `external_id` is free text: it never becomes a key of its own. A message's id follows from its account and
  its external_id (`message_id_for`), so that the record itself is what a replay finds, and two accounts'
  equal external_ids are two messages.
"""

from __future__ import annotations

import hashlib
import re
import uuid

INSTANCE_NAME_RULE = "1 to 64 letters, digits, _ . or -, starting with a letter or a digit, without '..'"
_INSTANCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
SENDER_MAX = 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_MESSAGE_ID = re.compile(f"msg-{_UUID}")
_MESSAGE_IDS = re.compile(f"(?:msg-{_UUID})*")
_BATCH_ID = re.compile(f"batch-{_UUID}")


def is_instance_name(name: str) -> bool:
    """True for a name that stays one plain segment of a URL path: ASCII letters, digits, `_`, `.`, `-`, never
    `.`, `..` or anything containing `..` (a dot segment that HTTP clients and proxies resolve)."""
    return _INSTANCE_NAME.fullmatch(name) is not None and ".." not in name


def sender_name_problem(sender: str) -> str | None:
    """What keeps `sender` from naming any provider's sender (to follow the field's name), or None: the rule of
    providers whose senders have no form of their own (a provider's declaration may name a stricter one)."""
    if not 1 <= len(sender) <= SENDER_MAX or _CONTROL.search(sender):
        return f"must be 1 to {SENDER_MAX} characters, without control characters"
    return None


def instance_name_problem(sender: str) -> str | None:
    """What keeps `sender` from naming an Evolution instance, or None."""
    return None if is_instance_name(sender) else f"must be an Evolution instance name: {INSTANCE_NAME_RULE}"


def message_id_for(account: str, external_id: str) -> str:
    """The id of `account`'s message `external_id`: a UUID (version 8, RFC 9562) of the SHA-256 of both, so that
    a replay names the message it repeats without a second key a message to find it by (memory is what a
    deployment pays for first). The id says nothing a reader can use: reading a message is its account's alone."""
    digits = hashlib.sha256(f"{account}\x00{external_id}".encode()).digest()[:16].hex()
    # Written out rather than through uuid.UUID, which costs half this function on a 10,000-row bulk: the 13th
    # digit becomes the version, 8, and the 17th keeps its low two bits under the RFC's variant, binary 10.
    variant = "89ab"[int(digits[16], 16) & 3]
    return _message_id(f"{digits[:12]}8{digits[13:16]}{variant}{digits[17:]}")


def _message_id(digits: str) -> str:
    """Our message id of a UUID's 32 hex digits."""
    return f"msg-{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def packed_message_id(message_id: str) -> bytes | str:
    """`message_id` as the provider ids' index keeps it (lib/packed.lua says why): its UUID's 16 bytes, or its
    text when it is not exactly one of ours. A move to `sent` is packed here, in the process that sends it, rather
    than in the script: Redis is the one part a deployment cannot add more of, and packing in Lua cost a sent bulk
    row 4 % more of Redis's work."""
    return bytes.fromhex(message_id[4:].replace("-", "")) if is_message_id(message_id) else message_id


def packed_row_ids(message_ids: list[str]) -> bytes:
    """A slice of a bulk request's row ids as its batch's list keeps them, 16 bytes each, end to end: one argument
    for create_rows, not one an id. Packed here, not in the script, where it was a quarter of the Redis work of an
    accepted row (`python -m bench.redis_instructions 5000 accept`). Every row id is `message_id_for`'s, so none
    stays text; anything else is refused (a UUID in capitals would pack, and unpack as another id)."""
    joined = "".join(message_ids)
    if not _MESSAGE_IDS.fullmatch(joined):  # one match a slice: 3.6 ms for 10,000 ids, where one an id took 6.8
        raise ValueError("a row id that is not one of ours")
    return bytes.fromhex(joined.replace("msg-", "").replace("-", ""))


def unpacked_message_id(stored: bytes) -> str:
    """The message id an entry of a batch's row list holds, packed or as text (lists written before)."""
    return _message_id(stored.hex()) if len(stored) == 16 else stored.decode()


def new_batch_id() -> str:
    return f"batch-{uuid.uuid4()}"


def is_message_id(text: str) -> bool:
    return _MESSAGE_ID.fullmatch(text) is not None


def is_batch_id(text: str) -> bool:
    return _BATCH_ID.fullmatch(text) is not None
