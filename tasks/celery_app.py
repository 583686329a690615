"""The Celery application, configured from `celeryconfig.py` (read lazily, when first needed)."""

from celery import Celery

SEND_MESSAGE = "dispatch.send_message"
SEND_BATCH_CHUNK = "dispatch.send_batch_chunk"
RECONCILE = "dispatch.reconcile"

app = Celery("dispatcher", include=["tasks.send", "tasks.batch", "tasks.reconcile", "tasks.worker_hooks"])
app.config_from_object("celeryconfig")
