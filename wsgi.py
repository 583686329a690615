"""The WSGI entry point: `gunicorn wsgi:app`."""

from dispatcher.api import create_app

app = create_app()
