"""The Celery side of the dispatcher: `celery -A tasks worker|flower|inspect ...` finds `app` here."""

from tasks.celery_app import app

__all__ = ["app"]
