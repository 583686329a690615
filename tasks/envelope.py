"""Celery task messages built by hand, so the API can push one in the same Redis script that records the message.

This is Celery's message protocol v2 (docs: "Message Protocol") wrapped the way kombu's Redis
transport stores it: a JSON envelope LPUSHed onto the list named after the queue. Writing the task
and the record in one atomic step is what makes "accepted means durable" hold without a second
round trip; `tests/test_envelope.py` checks the shape against what Celery itself publishes, and the
end-to-end tests check that a real worker runs it.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid

from dispatcher.services import Publishers

_ORIGIN = f"gen{os.getpid()}@{socket.gethostname()}"


def task_envelope(task_name: str, args: list, queue: str) -> str:
    """The JSON text kombu's Redis transport would LPUSH onto `queue` for `task_name(*args)`."""
    task_id = str(uuid.uuid4())
    body = json.dumps([args, {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
    headers: dict[str, object] = {
        "lang": "py",
        "task": task_name,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": repr(args),
        "kwargsrepr": "{}",
        "origin": _ORIGIN,
        "ignore_result": None,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    properties = {
        "correlation_id": task_id,
        "reply_to": "",
        "delivery_mode": 2,
        "delivery_info": {"exchange": "", "routing_key": queue},
        "priority": 0,
        "body_encoding": "base64",
        "delivery_tag": str(uuid.uuid4()),
    }
    return json.dumps(
        {
            "body": base64.b64encode(body.encode()).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": properties,
        }
    )


def send_task_for(queue: str):
    """What `MessageService` needs to publish a message: message id → (queue key, `dispatch.send_message` task)."""
    from tasks.celery_app import SEND_MESSAGE

    def task_for(message_id: str) -> tuple[str, str]:
        return queue, task_envelope(SEND_MESSAGE, [message_id], queue)

    return task_for


def chunk_task_for(queue: str):
    """What `MessageService` needs to publish a batch: (batch id, start, stop) → (queue key, chunk task)."""
    from tasks.celery_app import SEND_BATCH_CHUNK

    def task_for(batch_id: str, start: int, stop: int) -> tuple[str, str]:
        return queue, task_envelope(SEND_BATCH_CHUNK, [batch_id, start, stop], queue)

    return task_for


def publishers(queue: str) -> Publishers:
    """The task messages of new messages and batch chunks on `queue`, for `dispatcher.services.build_services`."""
    return Publishers(message=send_task_for(queue), chunk=chunk_task_for(queue))


def callback_task_for(queue: str):
    """A chain of status callbacks → (queue key, `dispatch.deliver_callbacks` task)."""
    from tasks.celery_app import DELIVER_CALLBACKS

    def task_for(chain: str) -> tuple[str, str]:
        return queue, task_envelope(DELIVER_CALLBACKS, [chain], queue)

    return task_for
