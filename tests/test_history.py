"""A history's steps as written and read back (dispatcher/history.py): a token says exactly what the JSON
step it replaces said."""

import json

import pytest

from dispatcher import history
from dispatcher.times import iso, millis

CREATED = 1_796_000_000.123
AT = CREATED + 2.5
RECORD = {"created_at": str(millis(CREATED)), "provider": "meta", "status": "read"}


def read_back(step: str) -> dict:
    """The step as the history shows it, kept as lib/lifecycle.lua keeps it: a JSON one in the log, a token on the
    record, its time relative to the record's creation."""
    if step.startswith("{"):
        return history.entries({**RECORD, "steps": history.IN_THE_LOG}, [], step + "\n")[1]
    status, _, rest = step.partition("@")
    at, tail = rest[:13], rest[13:]
    return history.entries({**RECORD, "steps": f"{status}+{int(at) - millis(CREATED)}{tail}"}, [], None)[1]


@pytest.mark.parametrize(
    ("word", "provider_at", "said"),
    [
        ("", None, {}),
        ("delivered", None, {"provider_status": "delivered"}),
        ("DELIVERY_ACK", AT - 1.2, {"provider_status": "DELIVERY_ACK", "provider_at": iso(AT - 1.2)}),
        ("delivered", AT + 3600, {"provider_status": "delivered", "provider_at": iso(AT + 3600)}),
    ],
)
def test_a_report_token_says_what_its_json_said(word, provider_at, said):
    step = history.report_step("delivered", AT, "meta", word, provider_at)
    assert not step.startswith("{")
    assert read_back(step) == {"status": "delivered", "at": iso(AT), "source": "meta webhook", **said}
    assert read_back(step + "?read")["ignored"] == "message already read"  # as reports.lua marks one


@pytest.mark.parametrize(
    ("word", "error"),
    [("un delivered", None), ("x" * 33, None), ("failed", {"code": "131026", "message": "undeliverable"})],
)
def test_what_a_token_cannot_say_is_written_as_json(word, error):
    step = history.report_step("failed", AT, "meta", word, AT - 1, error)
    expected = {"status": "failed", "at": iso(AT), "source": "meta webhook", "provider_status": word}
    assert json.loads(step) == {**expected, "provider_at": iso(AT - 1), **({"error": error} if error else {})}
    assert read_back(step) == json.loads(step)


def test_a_step_that_is_neither_is_refused():
    with pytest.raises(ValueError, match="not a history step"):
        history.entries({**RECORD, "steps": "sent+1 sent;"}, [], None)
