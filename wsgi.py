"""The WSGI entry point: `granian --interface wsgi wsgi:app` (the Procfile's `web` line)."""

from dispatcher.api import create_app

app = create_app()
