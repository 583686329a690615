"""What the workers tell Flower: their Celery events, as a real event receiver on the broker gathers them, and
the broker's PUBLISHes that carry them."""

from __future__ import annotations

import threading

import celery
import redis


class TaskEvents:
    """The Celery events the workers publish (what Flower shows and keeps), gathered by a real event receiver
    on the broker."""

    def __init__(self, broker_url: str):
        self.events: list[dict] = []
        self._app = celery.Celery(broker=broker_url)
        self._connection = self._app.connection_for_read()
        self._receiver = self._app.events.Receiver(self._connection, handlers={"*": self.events.append})
        self._thread = threading.Thread(target=self._receiver.capture, kwargs={"wakeup": True}, daemon=True)

    def __enter__(self) -> TaskEvents:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._receiver.should_stop = True
        self._thread.join(5)
        self._connection.release()

    def of(self, kind: str, **fields) -> list[dict]:
        return [e for e in self.events if e["type"] == kind and all(e.get(k) == v for k, v in fields.items())]


class EventPublishes:
    """Counts the PUBLISHes that carry task events (kombu publishes Celery's event exchange on Redis channels
    named after it, one message a batch of events)."""

    PATTERN = "*celeryev/task.*"

    def __init__(self, broker_url: str):
        self.count = 0
        self._pubsub = redis.Redis.from_url(broker_url).pubsub(ignore_subscribe_messages=True)
        self._pubsub.psubscribe(**{self.PATTERN: self._counted})
        self._thread = self._pubsub.run_in_thread(sleep_time=0.05, daemon=True)

    def _counted(self, _message) -> None:
        self.count += 1

    def __enter__(self) -> EventPublishes:
        return self

    def __exit__(self, *_) -> None:
        self._thread.stop()
        self._thread.join(5)
        self._pubsub.close()
