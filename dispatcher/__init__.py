"""The dispatcher's domain: settings, the message store, statuses, phone numbers.

Kept free of Flask and Celery so the workers import it without the web app.
"""
