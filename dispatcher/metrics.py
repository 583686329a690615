"""What /metrics shows, read from Redis at each scrape.

Every number lives in Redis, written by the same Lua scripts that change the state it counts
(`dispatch:metrics:*`, see `lua/lib/lifecycle.lua`, `advance.lua`, `report.lua`, `settle_head.lua`), so the
answer is the same whichever web process or host serves the scrape: prometheus-client's
multiprocess mode, with its files per process, is not needed. A scrape is one pipelined round
trip, whatever the number of messages kept, and three more for the sender pools.
"""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from dispatcher import redis_keys, statuses, worker_registry
from dispatcher.pools import PoolRegistry
from dispatcher.settings import Settings
from dispatcher.store import MessageStore

# The send-latency buckets advance.lua fills (upper bounds, seconds); the rest is +Inf.
LATENCY_BUCKETS = ("0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30")


def _split(field: str, parts: int) -> list[str]:
    values = field.split("\t")
    return values + [""] * (parts - len(values))


class DispatcherCollector(Collector):
    def __init__(self, store: MessageStore, settings: Settings, pools: PoolRegistry):
        self.store = store
        self.settings = settings
        self.pools = pools

    def collect(self):
        client = self.store.redis
        pipe = client.pipeline(transaction=False)
        for family in (
            redis_keys.METRICS_STATUSES,
            redis_keys.METRICS_LATENCY,
            redis_keys.METRICS_REPORTS,
            redis_keys.METRICS_CALLBACKS,
            redis_keys.METRICS,
        ):
            pipe.hgetall(family.key())
        pipe.llen(self.settings.queue_name)
        pipe.llen(self.settings.callbacks.queue_name)
        pipe.zcard(redis_keys.DUE.key())
        pipe.zcard(redis_keys.CALLBACKS_DUE.key())
        pipe.zcard(redis_keys.DEAD_BY_TIME.key())
        pipe.zcard(redis_keys.FAILED.key())
        (
            reached,
            latency,
            reports,
            callbacks,
            misc,
            queue_depth,
            callback_queue_depth,
            held,
            callbacks_waiting,
            callbacks_dead,
            failed,
        ) = pipe.execute()
        workers = worker_registry.seen(client)
        counts = self.store.counts()

        messages = CounterMetricFamily(
            "dispatcher_messages",
            "Messages that reached each status (accepted = created), by provider and sender",
            labels=["status", "provider", "sender"],
        )
        retries = CounterMetricFamily(
            "dispatcher_send_retries", "Sends that failed and were scheduled again", labels=["provider", "sender"]
        )
        for field, value in sorted(reached.items()):
            status, provider, sender = _split(field, 3)
            if status == statuses.RETRYING:
                retries.add_metric([provider, sender], int(value))
            messages.add_metric([status, provider, sender], int(value))
        yield messages
        yield retries
        yield self._latency(latency)

        status_reports = CounterMetricFamily(
            "dispatcher_status_reports",
            "Provider status webhooks, by outcome (ok, duplicate, same, stale; parked: before we recorded the send, "
            "applied when we do)",
            labels=["provider", "outcome"],
        )
        for field, value in sorted(reports.items()):
            status_reports.add_metric(_split(field, 2), int(value))
        yield status_reports

        deliveries = CounterMetricFamily(
            "dispatcher_callback_deliveries",
            "Status callback attempts to the caller, by outcome (delivered, retry, dead)",
            labels=["outcome"],
        )
        for outcome, value in sorted(callbacks.items()):
            deliveries.add_metric([outcome], int(value))
        yield deliveries
        yield CounterMetricFamily(
            "dispatcher_sender_auto_pauses",
            "Senders paused because too many of their recent sends failed",
            value=int(misc.get("sender_auto_pauses_total", 0)),
        )

        current = GaugeMetricFamily(
            "dispatcher_messages_current", "Messages kept, by current status", labels=["status"]
        )
        for status in statuses.ALL:
            current.add_metric([status], max(0, int(counts.get(status, 0))))
        yield current
        for name, text, value in (
            ("dispatcher_queue_depth", "Celery tasks waiting in the send queue", queue_depth),
            ("dispatcher_callback_queue_depth", "Celery tasks waiting in the callbacks queue", callback_queue_depth),
            ("dispatcher_held_by_pacing", "Messages waiting for their sender's pacing slot", held),
            ("dispatcher_held_by_schedule", "Messages scheduled for later", int(counts.get(statuses.SCHEDULED, 0))),
            ("dispatcher_callbacks_waiting", "Messages with status callbacks still to deliver", callbacks_waiting),
            ("dispatcher_callbacks_dead", "Status callbacks that gave up", callbacks_dead),
            ("dispatcher_failed_messages", "Failed messages kept (GET /v1/messages?status=failed)", failed),
            (
                "dispatcher_workers_consuming",
                "Workers heard from in the last minute that consume the send queue",
                len(worker_registry.consumers(workers, self.settings.queue_name)),
            ),
        ):
            yield GaugeMetricFamily(name, text, value=value)
        yield from self._pools()

    def _pools(self):
        labels = ["pool", "provider", "sender"]
        sent = CounterMetricFamily("dispatcher_pool_member_sent", "Messages a pool's member sent for it", labels=labels)
        active = GaugeMetricFamily(
            "dispatcher_pool_member_active", "1 when a pool's member can send, 0 when it is paused", labels=labels
        )
        held = GaugeMetricFamily(
            "dispatcher_pool_held", "Messages a pool holds because no member can send", labels=["pool"]
        )
        for name, held_now, members in self.pools.gauges():
            held.add_metric([name], held_now)
            for member, member_sent, can_send in members:
                sent.add_metric([name, member.provider, member.sender], member_sent)
                active.add_metric([name, member.provider, member.sender], 1 if can_send else 0)
        yield sent
        yield active
        yield held

    @staticmethod
    def _latency(latency: dict[str, str]) -> HistogramMetricFamily:
        family = HistogramMetricFamily(
            "dispatcher_send_duration_seconds", "How long each provider call took", labels=["provider"]
        )
        providers = sorted({field.split("\t")[0] for field in latency})
        for provider in providers:
            cumulative, buckets = 0, []
            for bound in (*LATENCY_BUCKETS, "+Inf"):
                cumulative += int(latency.get(f"{provider}\t{bound}", 0))
                buckets.append((bound, cumulative))
            family.add_metric([provider], buckets, sum_value=float(latency.get(f"{provider}\tsum", 0)))
        return family
