"""Celery's settings, derived from the service's own (see dispatcher/settings.py).

Workers, Flower and the celery CLI all load this module (`celery -A tasks ...`), so they agree with
the API on the broker, the queue name and the task names.
"""

from dispatcher.settings import redis_ssl_options, settings_or_exit

_settings = settings_or_exit()

broker_url = _settings.redis_url
# For rediss://, verify Redis's certificate unless REDIS_TLS_VERIFY=none (Heroku Redis): left alone, kombu would
# not verify it at all. The API's control app (tasks/control.py) does the same.
broker_use_ssl = redis_ssl_options(broker_url) or False
broker_connection_retry_on_startup = True
# No copy of a fetched task stays in Redis (kombu's ack emulation: a hash and an index a task, written when it
# is fetched and again when it is acknowledged, about a third of a worker's main process). What a worker holds
# comes back without it: every message and chunk has a deadline in Redis that a live worker renews from the
# moment it fetches the task (tasks/leases.py), and a warm shutdown hands its unstarted tasks back to the queue.
# The broker's own copy came back only after an hour (its visibility timeout).
broker_transport_options = {"ack_emulation": False}

task_default_queue = _settings.queue_name
task_serializer = "json"
accept_content = ["json"]
task_ignore_result = True
task_acks_late = True
task_reject_on_worker_lost = True
task_track_started = False
task_send_sent_event = _settings.task_events  # TASK_EVENTS: what Flower lists tasks from
worker_send_task_events = _settings.task_events
worker_prefetch_multiplier = 4
worker_pool = _settings.worker_pool
worker_concurrency = _settings.worker_concurrency
worker_hijack_root_logger = False
timezone = "UTC"
enable_utc = True

task_annotations = (
    {"dispatch.send_message": {"rate_limit": _settings.worker_rate_limit}} if _settings.worker_rate_limit else {}
)
