"""A message's history: how its steps are written and read back.

The first step, `queued` (or `scheduled`), is the record's own creation and is not written. Each later one is
a JSON object or, when it says no more than a token can, a short token (every byte is kept for the retention,
and most steps say only their status and time):

    status@<epoch ms>[#attempt][~<provider's time, ms after ours>][=<provider's word>][!][?<status>]

`=` alone says the provider's word is our status's, `!` that the step is a report of the record's provider's
webhook, `?` that it was ignored, the message being already in that status. The record keeps a token with its
time as `+<ms since its created_at>`. lib/lifecycle.lua keeps the tokens in the record while they fit a compact
record (64 bytes a value): the reports' in its `reports` field, the others before them in `steps`. It moves
the history to the message's log key (a step a line) once one does not fit, or once a step is JSON (an error,
a retry's delay); `steps` then says '+'. Messages accepted before
this kept their history in a list, then in the log alone: both are read first.
"""

from __future__ import annotations

import json
import re

from dispatcher import statuses
from dispatcher.times import iso, millis, shown

# How JSON steps are written: every byte of them is kept for the retention.
COMPACT = (",", ":")
IN_THE_LOG = "+"
_WORD = re.compile(r"[A-Za-z0-9_.-]{1,32}")  # a provider's status word a token can carry
_TOKEN = re.compile(
    r"(?P<status>[a-z_]+)(?P<since>[@+])(?P<at>-?\d+)(?:#(?P<attempt>\d+))?(?:~(?P<provider_at>-?\d+))?"
    r"(?:=(?P<word>[A-Za-z0-9_.-]*))?(?P<webhook>!)?(?:\?(?P<ignored>[a-z_]+))?"
)


def step(status: str, at: float, detail: dict | None = None) -> str:
    """The history step a move to `status` at `at` writes: a token, or JSON when it says more."""
    if detail:
        return json.dumps({"status": status, "at": iso(at), **detail}, separators=COMPACT)
    return f"{status}@{millis(at)}"


def report_step(
    status: str, at: float, provider: str, word: str = "", provider_at: float | None = None, error: dict | None = None
) -> str:
    """The step a provider's report writes (`word`: its own status word; `provider_at`: its time)."""
    if error is None and (not word or _WORD.fullmatch(word)):
        token = f"{status}@{millis(at)}"
        if provider_at:
            token += f"~{millis(provider_at) - millis(at)}"
        if word:
            token += "=" if word == status else f"={word}"
        return token + "!"
    entry: dict = {"status": status, "at": iso(at), "source": f"{provider} webhook"}
    if word:
        entry["provider_status"] = word
    if provider_at:
        entry["provider_at"] = iso(provider_at)
    if error is not None:
        entry["error"] = error
    return json.dumps(entry, ensure_ascii=False, separators=COMPACT)


def entries(record: dict, listed: list[str], log: str | None) -> list[dict]:
    """The whole history, oldest first: the creation, then the list and the log of older layouts, then the
    record's steps and its reports."""
    steps = record.get("steps", "")
    on_record = [] if steps == IN_THE_LOG else [*steps.split(), *record.get("reports", "").split()]
    lines = [*listed, *(log.splitlines() if log else []), *on_record]
    created = record.get("created_at", "")
    since = int(created) if created.isdigit() else 0
    return [_first_entry(record), *(_with_provider_id(_decoded(line, since, record), record) for line in lines)]


def updated_at(record: dict) -> str:
    """When the message last moved, as the record keeps times: the time of its history's last step that was
    not ignored while that history is in the record, which then keeps no `updated_at` of its own (every byte
    is kept for the retention); else its `updated_at` (a history in the log, or a record written before), or
    its creation."""
    steps = record.get("steps", "")
    created = record.get("created_at", "")
    if steps and steps != IN_THE_LOG and created.isdigit():
        for line in reversed([*steps.split(), *record.get("reports", "").split()]):
            token = _TOKEN.fullmatch(line)
            if token is not None and not token["ignored"]:
                return str(int(token["at"]) + (int(created) if token["since"] == "+" else 0))
    return record.get("updated_at") or created


def _decoded(line: str, created: int, record: dict) -> dict:
    """A step as written (`created`: the record's created_at in epoch ms, which relative times count from)."""
    if line.startswith("{"):
        return json.loads(line)
    token = _TOKEN.fullmatch(line)
    if token is None:
        raise ValueError(f"not a history step: {line!r}")
    at = int(token["at"]) + (created if token["since"] == "+" else 0)
    entry: dict = {"status": token["status"], "at": iso(at / 1000)}
    if token["attempt"]:
        entry["attempt"] = int(token["attempt"])
    if token["webhook"]:
        entry["source"] = f"{record.get('provider', '')} webhook"
    if token["word"] is not None:
        entry["provider_status"] = token["word"] or token["status"]
    if token["provider_at"]:
        entry["provider_at"] = iso((at + int(token["provider_at"])) / 1000)
    if token["ignored"]:
        entry["ignored"] = f"message already {token['ignored']}"
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
