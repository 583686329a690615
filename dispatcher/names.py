"""Names that arrive in requests or settings and become part of a provider's URL path or of a Redis key: the
form each must have, in one place, so every door that lets one in applies the same rule.

- An Evolution instance name is a segment of Evolution's URL paths (`/message/sendText/<name>`, ...) and
  of its session folders. Evolution itself takes any non-empty string, so its own routes are reachable
  with a name such as `../instance/delete/loja-1`; ours are the names that stay one plain segment.
- Any other sender (a Twilio number or service, a Meta phone-number id, a bridge's own label) is free text
  within limits: it is encoded where it becomes part of a key (`dispatcher.senders.sender_id`), and is a
  label in /metrics, where a tab would split it.
"""

from __future__ import annotations

import re

INSTANCE_NAME_RULE = "1 to 64 letters, digits, _ . or -, starting with a letter or a digit, without '..'"
_INSTANCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
SENDER_MAX = 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def is_instance_name(name: str) -> bool:
    """True for a name that stays one plain segment of a URL path: ASCII letters, digits, `_`, `.`, `-`, never
    `.`, `..` or anything containing `..` (a dot segment that HTTP clients and proxies resolve)."""
    return _INSTANCE_NAME.fullmatch(name) is not None and ".." not in name


def sender_problem(provider: str, sender: str) -> str | None:
    """What keeps `sender` from naming a sender of `provider` (to follow the field's name), or None."""
    if provider == "evolution":
        return None if is_instance_name(sender) else f"must be an Evolution instance name: {INSTANCE_NAME_RULE}"
    if not 1 <= len(sender) <= SENDER_MAX or _CONTROL.search(sender):
        return f"must be 1 to {SENDER_MAX} characters, without control characters"
    return None
