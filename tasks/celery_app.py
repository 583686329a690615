"""The Celery application, configured from `celeryconfig.py` (read lazily, when first needed)."""

from celery import Celery

from tasks.event_batches import PublishEventsOnATimer

SEND_MESSAGE = "dispatch.send_message"
SEND_BATCH_CHUNK = "dispatch.send_batch_chunk"
RECONCILE = "dispatch.reconcile"
DELIVER_CALLBACKS = "dispatch.deliver_callbacks"

TASK_MODULES = ["tasks.send", "tasks.batch", "tasks.reconcile", "tasks.callbacks", "tasks.worker_hooks"]

app = Celery("dispatcher", include=TASK_MODULES)
app.config_from_object("celeryconfig")
app.steps["consumer"].add(PublishEventsOnATimer)
