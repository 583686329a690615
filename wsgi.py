"""The WSGI entry point: `granian --interface wsgi wsgi:app` (the Procfile's `web` line)."""

from dispatcher.api import create_app
from dispatcher.settings import settings_or_exit

app = create_app(settings_or_exit())
