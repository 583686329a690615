"""`/v1/queue/status`: what is waiting, running, retrying and failed, and which workers are online."""

from __future__ import annotations

from flask import Blueprint, jsonify

from dispatcher import statuses, worker_registry
from dispatcher.api import context
from dispatcher.api.auth import require_operator
from dispatcher.api.openapi import Answer, documented
from dispatcher.api.presenters import queue_counts
from dispatcher.api.schemas import QueueStatusSchema
from tasks.control import workers_online

blueprint = Blueprint("queue", __name__)


@blueprint.get("/v1/queue/status")
@documented(answers={200: Answer("The queue", QueueStatusSchema)})
@require_operator
def queue_status():
    """Tasks in the broker, messages by status, and the workers online.

    Counts are over all messages kept (MESSAGE_RETENTION_DAYS) and all API keys. Answers within
    about half a second even when no worker replies.
    """
    services = context.services()
    counts = queue_counts(services.store)
    workers = workers_online(services.settings.redis_url)
    warning = worker_registry.no_consumer_warning(
        worker_registry.seen(services.store.redis), services.settings.queue_name
    )
    return jsonify(
        {
            **({"warning": warning} if warning else {}),
            "queue": services.settings.queue_name,
            "tasks_in_broker": services.store.redis.llen(services.settings.queue_name),
            "waiting": counts[statuses.QUEUED],
            "active": counts[statuses.SENDING],
            "retrying": counts[statuses.RETRYING],
            "failed": counts[statuses.FAILED],
            "held_by_pacing": services.store.held(),
            "held_by_pools": services.pools.held(),
            "held_by_schedule": counts[statuses.SCHEDULED],
            "callbacks_waiting": services.outbox.waiting(),
            "callbacks_dead": services.outbox.dead_count(),
            "counts": counts,
            "workers": workers,
            "workers_online": len(workers),
        }
    )
