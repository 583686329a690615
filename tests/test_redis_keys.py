"""dispatcher/redis_keys.py is the table of every Redis key: every `dispatch:` name the code or the Lua spells
(in strings and comments alike) must be one of its families, so a new family cannot go unlisted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dispatcher import redis_keys

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [
    path
    for folder in ("dispatcher", "tasks")
    for path in sorted((ROOT / folder).rglob("*"))
    if path.suffix in {".py", ".lua"} and path.name != "redis_keys.py"
]
NAME = re.compile(r"dispatch:[\w:%-]*")


def _declared(name: str) -> bool:
    """A family's whole name (`dispatch:pending`), or its start up to a colon, to which a part is appended
    (`'dispatch:msg:' .. id`, `dispatch:sender:<id>` in a sentence)."""
    rest = name.removeprefix(redis_keys.PREFIX)
    return any(
        rest == family.pattern or ((rest.endswith(":") or not rest) and family.pattern.startswith(rest))
        for family in redis_keys.FAMILIES
    )


def test_the_scan_reads_the_lua_and_the_python():
    spelled = {name for path in SOURCES for name in NAME.findall(path.read_text())}
    assert {"dispatch:cb:chain:", "dispatch:metrics:latency", "dispatch:msg:"} <= spelled


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_key_name_is_a_declared_family(path):
    undeclared = sorted({name for name in NAME.findall(path.read_text()) if not _declared(name)})
    assert not undeclared, f"not in dispatcher/redis_keys.py: {undeclared}"


def test_a_family_builds_its_keys():
    assert redis_keys.MESSAGE.key("msg-1") == "dispatch:msg:msg-1"
    assert redis_keys.SENT_TODAY.key("mock:a%3Ab", 20000) == "dispatch:sent-today:mock:a%3Ab:20000"
    assert redis_keys.PENDING.key() == "dispatch:pending"
    assert redis_keys.SENDER_HELD.prefix == "dispatch:sender:"
    assert redis_keys.SENDER_HELD.matches("dispatch:sender:mock:x:held")
    with pytest.raises(TypeError):
        redis_keys.BATCH.key()


def test_no_two_families_share_a_pattern():
    patterns = [family.pattern for family in redis_keys.FAMILIES]
    assert len(patterns) == len(set(patterns))
