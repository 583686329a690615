"""The callback events' one definition (dispatcher/callback_events.py) is what /openapi.json publishes, and what
the fake receivers hold every delivered event to (tests/fakes/callback_schema.py)."""

from __future__ import annotations

from dispatcher import callback_events, statuses
from tests.fakes.callback_schema import event_errors

SENT = {
    "event_id": "msg-1.1",
    "type": "message.sent",
    "message_id": "msg-1",
    "external_id": "c_1",
    "batch_id": None,
    "status": "sent",
    "at": "2026-11-25T12:00:03.512Z",
    "error": None,
    "provider": "mock",
    "sender": None,
    "pool": None,
}


def test_every_event_type_is_published(client):
    spec = client.get("/openapi.json").json
    assert set(spec["x-webhooks"]) == {f"message.{s}" for s in statuses.FINISHED} | {
        "batch.completed",
        "message.received",
        "contact.opted_out",
        "contact.opted_in",
    }
    for event_type, hook in spec["x-webhooks"].items():
        ref = hook["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{callback_events.EVENTS[event_type].__name__}"
        assert ref.split("/")[-1] in spec["components"]["schemas"]


def test_the_docs_page_shows_every_event_and_its_fields(client):
    page = client.get("/docs").get_data(as_text=True)
    for event_type in callback_events.EVENTS:
        assert f'id="event-{event_type}"' in page
    assert "<code>in_reply_to</code>" in page  # a field of message.received
    assert "<code>counts</code>" in page  # a field of batch.completed


def test_the_receivers_check_holds_events_to_the_schema():
    assert event_errors(SENT) == []
    assert event_errors({**SENT, "extra": 1})  # a field the documentation does not name
    assert event_errors({key: value for key, value in SENT.items() if key != "batch_id"})  # null, never absent
    assert event_errors({**SENT, "status": "queued"})
    assert event_errors({**SENT, "type": "message.queued"})
