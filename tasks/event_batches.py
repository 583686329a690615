"""Task events published in batches a few times a second, not once per turn of the worker's event loop.

Flower lists tasks from the events a worker publishes for each of them (received, started, succeeded). Celery
already gathers a worker's task events in a buffer, but asks for it to be published at the next turn of the
event loop, and a busy worker's loop turns for nearly every task: one PUBLISH for a few events, each built and
sent through kombu while the loop waits. That cost a worker about a quarter of its single sends
(docs/performance.md).

This consumer step publishes the buffer on a timer instead, every `FLUSH_INTERVAL` seconds. Celery still
publishes a buffer as soon as it holds 24 events, so a batch stays small, and Flower sees a task's events at
most `FLUSH_INTERVAL` late. The timer stops with the consumer, so the step publishes what is left then, and
again once the pool has finished its last tasks: a worker that is stopped does not take their events with it.
"""

from __future__ import annotations

from celery import bootsteps
from celery.worker.consumer.events import Events

FLUSH_INTERVAL = 0.1


class PublishEventsOnATimer(bootsteps.StartStopStep):
    """Runs after Celery's `Events` step, which makes a new event dispatcher at each (re)connection."""

    requires = (Events,)

    def __init__(self, consumer, **kwargs):
        self.timer_entry = None
        super().__init__(consumer, **kwargs)

    def start(self, consumer) -> None:
        dispatcher = consumer.event_dispatcher
        if dispatcher is None or consumer.hub is None:  # without an event loop, Celery buffers no events
            return
        dispatcher.on_send_buffered = None  # Celery's own: publish at the loop's next turn
        self.timer_entry = consumer.timer.call_repeatedly(FLUSH_INTERVAL, publish_buffered, (consumer,))

    def stop(self, consumer) -> None:
        """At a reconnection, and twice at a worker's shutdown: when it stops consuming, and once its pool has
        finished the tasks it held, whose events come after the first."""
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None
        publish_buffered(consumer)

    shutdown = stop


def publish_buffered(consumer) -> None:
    """Publish the events the consumer's dispatcher holds (it keeps those it could not send, for the next)."""
    if consumer.event_dispatcher is not None:
        consumer.event_dispatcher.flush()
