"""The task events a real worker publishes for Flower: every one of them, a few PUBLISHes a second rather
than one per turn of the worker's loop (tasks/event_batches.py), and none left behind when it is stopped."""

import signal
import time

import pytest

from tasks.celery_app import SEND_MESSAGE
from tasks.event_batches import FLUSH_INTERVAL
from tests.celery_events import EventPublishes, TaskEvents
from tests.conftest import auth, wait_for

PHONE = "+5564999998888"
EVENTS_A_TASK = ("task-received", "task-started", "task-succeeded")
LAST_EVENTS = {"task-succeeded", "task-failed", "task-rejected", "task-retried"}


def send_many(client, count: int) -> list[str]:
    ids = []
    for index in range(count):
        answer = client.post(
            "/v1/messages/send",
            json={"recipient_phone": PHONE, "message_body": "Oi", "external_id": f"events-{index}"},
            headers=auth(),
        )
        assert answer.status_code == 200, answer.json
        ids.append(answer.json["message_id"])
    return ids


def sent(client, message_ids: list[str]) -> list[str]:
    store = client.application.extensions["dispatcher"].store
    return [m.message_id for m in store.get_many(message_ids) if m is not None and m.status == "sent"]


def tasks_of(events: TaskEvents) -> dict[str, set[str]]:
    """Each send task's id, with the kinds of event heard for it."""
    names = {e["uuid"] for e in events.of("task-received", name=SEND_MESSAGE)}
    kinds: dict[str, set[str]] = {uuid: set() for uuid in names}
    for event in events.events:
        if event.get("uuid") in kinds:
            kinds[event["uuid"]].add(event["type"])
    return kinds


def message_of(event: dict) -> str:
    return event["args"].strip("[]'\"")


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_every_task_event_reaches_flower_in_a_few_publishes_a_second(pool, client, redis_url, start_worker):
    count = 300
    with TaskEvents(redis_url) as events, EventPublishes(redis_url) as publishes:
        start_worker(WORKER_POOL=pool)
        wait_for(lambda: events.of("worker-heartbeat"), 15, what="the worker's heartbeat")
        began = time.monotonic()
        message_ids = send_many(client, count)
        wait_for(lambda: len(sent(client, message_ids)) == count, 60, what="every message sent")
        wait_for(
            lambda: len(tasks := tasks_of(events)) == count and all(k == set(EVENTS_A_TASK) for k in tasks.values()),
            5,
            what="each task's received, started and succeeded events",
        )
        elapsed = time.monotonic() - began
        # A PUBLISH a full buffer of 24 events (with the threads pool, a few more, smaller ones: threads add to
        # the buffer while it is being published), and one a tick of the timer for what is left. Published at
        # each turn of the worker's loop, as Celery does by itself, this drain took 406 to 533 PUBLISHes.
        most = count / 4 + elapsed / FLUSH_INTERVAL
        assert publishes.count <= most, (publishes.count, most, elapsed)
    assert {message_of(e) for e in events.of("task-received", name=SEND_MESSAGE)} == set(message_ids)


def test_a_worker_stopped_mid_drain_still_reports_every_task_it_finished(client, redis_url, start_worker):
    """SIGTERM to the worker's main process, as `celery multi` and systemd stop it: a warm shutdown, during which
    the threads pool finishes the tasks it holds. (A prefork pool is not stopped this way here: its children
    can wait up to 30 s for a worker that no longer reads their answers. A SIGTERM to the whole process group
    stops a child between a send and its answer, which the worker then hands back: `PREFORK_ON_HEROKU` in
    tests/test_deploy.py.)"""
    count = 600
    message_ids = send_many(client, count)
    with TaskEvents(redis_url) as events:
        worker = start_worker(WORKER_POOL="threads")
        wait_for(lambda: len(sent(client, message_ids)) >= 50, 30, what="the drain to be under way")
        worker.popen.send_signal(signal.SIGTERM)
        worker.popen.wait(20)
        finished = set(sent(client, message_ids))
        assert len(finished) < count, "the worker finished everything before it was stopped: send more"
        wait_for(lambda: finished <= ended(events), 5, what="the last event of every message's task")


def ended(events: TaskEvents) -> set[str]:
    """The messages whose send task was heard to end."""
    received = {e["uuid"]: message_of(e) for e in events.of("task-received", name=SEND_MESSAGE)}
    return {received[e["uuid"]] for e in events.events if e["type"] in LAST_EVENTS and e.get("uuid") in received}
