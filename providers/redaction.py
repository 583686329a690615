"""Provider error texts without the recipient's number or the message's text.

A provider's error often repeats the request: Meta's `error_data.details` quotes the parameters it
refused, Evolution's 400s give the number back (as sent, and as a WhatsApp JID), Twilio's messages name
the `whatsapp:+...` To. Such a text is logged, stored as the message's `last_error` (shown by
`GET /v1/messages/<id>`) and sent in the `message.failed` callback, so `Provider.send` passes every
error's text through `redact` before anyone sees it.

What goes:
- any number that shares a run of RECIPIENT_RUN digits with the recipient, however it is written
  (`+5564999998888`, `5564999998888@s.whatsapp.net`, `whatsapp:+55...`, `(64) 99999-8888`, the national
  number, the JID without a Brazilian mobile's ninth digit): `[recipient]`;
- any other number of LONG_NUMBER digits or more, spaces, dots, dashes and brackets between its digits
  allowed (another contact's number, an id we did not expect; a date written 2026-12-01 too): `[number]`;
- the message's texts (the body, a caption, template variables): every run of TEXT_RUN characters or more
  of one of them, as it is or JSON-escaped, and a shorter one where it stands as a word: `[text]`.
The result is at most `limit` characters.

This module imports nothing of ours: providers sit below the rest of the service.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

RECIPIENT_RUN = 5
LONG_NUMBER = 8
TEXT_RUN = 12
SHORTEST_WORD = 3  # a shorter text ("ok", a name's initials) is no secret, and would mangle every word
LIMIT = 500
# How much of a text is read at all: a provider may answer megabytes, and LIMIT characters are shown.
SCAN = 20_000

# Digits with at most two separators between them, and the prefixes WhatsApp addresses carry.
_NUMBER = re.compile(r"(?:whatsapp:)?\+?\(?\d+(?:[\s\-.()]{1,2}\d+)*")
_NOT_DIGIT = re.compile(r"\D")


def redact(text: str, recipient: str = "", texts: Iterable[str] = (), limit: int = LIMIT) -> str:
    """`text` without `recipient`'s number, any long number, or the `texts`, in at most `limit` characters."""
    scanned = text[:SCAN]
    # A text cut by SCAN may end in a fragment too short to recognise: what ends it is read, never shown.
    shown_until = len(scanned) if len(text) <= SCAN else SCAN - TEXT_RUN
    spans = sorted([*_number_spans(scanned, recipient), *_text_spans(scanned, texts)])
    redacted = _replace(scanned, spans, shown_until)
    if len(redacted) > limit or shown_until < len(text):
        return redacted[: limit - 1] + "…"
    return redacted


def _runs(digits: str, size: int) -> set[str]:
    return {digits[i : i + size] for i in range(len(digits) - size + 1)}


def _number_spans(text: str, recipient: str) -> list[tuple[int, int, str]]:
    """Where the recipient's number, or another long number, is written in `text`."""
    own = _runs(_NOT_DIGIT.sub("", recipient), RECIPIENT_RUN)
    spans = []
    for match in _NUMBER.finditer(text):
        digits = _NOT_DIGIT.sub("", match.group())
        if own & _runs(digits, RECIPIENT_RUN):
            spans.append((match.start(), match.end(), "[recipient]"))
        elif len(digits) >= LONG_NUMBER:
            spans.append((match.start(), match.end(), "[number]"))
    return spans


def _forms(secret: str) -> set[str]:
    """A text as a provider may quote it back: as it is, JSON-escaped (ASCII or not), its spaces collapsed."""
    return {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        " ".join(secret.split()),
    }


def _text_spans(text: str, texts: Iterable[str]) -> list[tuple[int, int, str]]:
    """Where a run of TEXT_RUN characters of one of `texts` is in `text`, or a shorter one as a word."""
    runs: set[str] = set()
    words: set[str] = set()
    for secret in texts:
        for form in _forms(secret):
            if len(form) >= TEXT_RUN:
                runs.update(run for run in _runs(form, TEXT_RUN) if not run.isspace())
            elif len(form) >= SHORTEST_WORD and any(ch.isalnum() for ch in form):
                words.add(form)
    spans = [(i, i + TEXT_RUN, "[text]") for i in range(len(text) - TEXT_RUN + 1) if text[i : i + TEXT_RUN] in runs]
    if words:
        alternatives = "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))
        spans += [(m.start(), m.end(), "[text]") for m in re.finditer(rf"(?<!\w)(?:{alternatives})(?!\w)", text)]
    return spans


def _replace(text: str, spans: list[tuple[int, int, str]], until: int) -> str:
    """`text[:until]` with each span (sorted; overlapping ones merged, the first one's label kept) replaced."""
    pieces, position = [], 0
    for start, end, label in spans:
        if start >= until:
            break
        if start < position:  # overlaps the span just replaced
            position = max(position, end)
            continue
        pieces += [text[position:start], label]
        position = end
    pieces.append(text[position:until])
    return "".join(pieces)
