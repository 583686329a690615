"""A message's history: how its steps are written and read back.

The first step, `queued` (or `scheduled`), is the record's own creation and is not written. Each later one is
a JSON object or, for a step that says only its status, its time and its attempt, a short token
`status@<epoch ms>[#attempt]`, which the record keeps as `status+<ms since its created_at>[#attempt]`: every
byte is kept for the retention, and most steps (sending, sent, canceled) say nothing more.
lib/lifecycle.lua keeps the tokens in the record's `steps` field while they fit a compact record (64 bytes),
and moves the history to the message's log key (a step a line) once one does not, or once a step is JSON (a
report, an error, a retry); `steps` then says '+'. Messages accepted before this kept their history in a
list, then in the log alone: both are read first.
"""

from __future__ import annotations

import json
import re

from dispatcher import statuses
from dispatcher.times import iso, millis, shown

# How JSON steps are written: every byte of them is kept for the retention.
COMPACT = (",", ":")
IN_THE_LOG = "+"


def step(status: str, at: float, detail: dict | None = None) -> str:
    """The history step a move to `status` at `at` writes: a token, or JSON when it says more."""
    if detail:
        return json.dumps({"status": status, "at": iso(at), **detail}, separators=COMPACT)
    return f"{status}@{millis(at)}"


def entries(record: dict, listed: list[str], log: str | None) -> list[dict]:
    """The whole history, oldest first: the creation, then the list and the log of older layouts, then the
    record's steps."""
    steps = record.get("steps", "")
    lines = [*listed, *(log.splitlines() if log else []), *(steps.split() if steps != IN_THE_LOG else [])]
    created = record.get("created_at", "")
    since = int(created) if created.isdigit() else 0
    return [_first_entry(record), *(_with_provider_id(_decoded(line, since), record) for line in lines)]


def _decoded(line: str, created: int) -> dict:
    """A step as written (`created`: the record's created_at in epoch ms, which relative tokens count from)."""
    if line.startswith("{"):
        return json.loads(line)
    status, relative, rest = re.match(r"([a-z_]+)([@+])(.*)", line).groups()
    at, _, attempt = rest.partition("#")
    entry: dict = {"status": status, "at": iso((int(at) + (created if relative == "+" else 0)) / 1000)}
    if attempt:
        entry["attempt"] = int(attempt)
    return entry


def _with_provider_id(entry: dict, record: dict) -> dict:
    """The `sent` step names the provider's id, which the record holds once (a message is sent once)."""
    if entry["status"] == statuses.SENT and "provider_message_id" not in entry and record.get("provider_message_id"):
        return {**entry, "provider_message_id": record["provider_message_id"]}
    return entry


def _first_entry(record: dict) -> dict:
    """The history's first entry, which creation does not write (it is the record's own creation)."""
    if record.get("send_at"):  # created scheduled (a window hold sets only scheduled_for, later)
        return {"status": statuses.SCHEDULED, "at": shown(record["created_at"]), "until": iso(float(record["send_at"]))}
    return {"status": statuses.QUEUED, "at": shown(record["created_at"])}
