"""The daily send window: outside it messages wait as `scheduled`, in Redis, and go when it opens."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatcher.send_window import SendWindow
from tests.conftest import auth, operator, wait_for

ZONE = "America/Sao_Paulo"


def at(hour: int, minute: int = 0) -> float:
    return datetime(2026, 11, 25, hour, minute, tzinfo=ZoneInfo(ZONE)).timestamp()


@pytest.mark.parametrize(
    ("window", "now", "opens"),
    [
        ("08:00-20:00", at(12), 0.0),
        ("08:00-20:00", at(7, 59), at(8)),
        ("08:00-20:00", at(20), at(8) + 86400),  # the end is excluded: tomorrow 08:00
        ("22:00-06:00", at(23), 0.0),  # a window across midnight
        ("22:00-06:00", at(5, 59), 0.0),
        ("22:00-06:00", at(12), at(22)),
    ],
)
def test_when_the_window_opens(window, now, opens):
    assert SendWindow.parse(window, ZONE).opens_at(now) == opens


def window_opening_in(seconds: float) -> str:
    """A window that opens `seconds` from now and stays open for an hour (the clock the test controls)."""
    start = datetime.now(ZoneInfo(ZONE)) + timedelta(seconds=seconds)
    end = start + timedelta(hours=1)
    return f"{start:%H:%M:%S}-{end:%H:%M:%S}"


def test_messages_wait_for_the_window_then_go(make_app, start_worker):
    env = {"SEND_WINDOW": window_opening_in(3), "SEND_TIMEZONE": ZONE}
    client = make_app(**env)
    start_worker(**env)
    single = client.post(
        "/v1/messages/send",
        headers=auth(),
        json={"recipient_phone": "+5564999998888", "message_body": "Bom dia", "external_id": "w-1"},
    ).json["message_id"]
    batch_id = client.post(
        "/v1/messages/bulk",
        headers=auth(),
        json={
            "messages": [
                {"recipient_phone": "+5564999998888", "external_id": f"wb-{n}", "message_body": "Oi"} for n in range(5)
            ]
        },
    ).json["batch_id"]

    def status():
        return client.get(f"/v1/messages/{single}", headers=auth()).json["status"]

    wait_for(lambda: status() == "scheduled", what="the message to be held for the window")
    wait_for(
        lambda: client.get(f"/v1/batches/{batch_id}", headers=auth()).json["counts"] == {"scheduled": 5},
        what="the batch to be held",
    )
    assert client.get("/v1/queue/status", headers=operator()).json["held_by_schedule"] == 6
    wait_for(lambda: status() == "sent", 20, what="the window to open")
    wait_for(
        lambda: client.get(f"/v1/batches/{batch_id}", headers=auth()).json["state"] == "completed",
        20,
        what="the batch after the window opened",
    )
    history = [entry["status"] for entry in client.get(f"/v1/messages/{single}", headers=auth()).json["history"]]
    assert history == ["queued", "scheduled", "sending", "sent"]
