"""`celery -A tasks dispatcher ...`: the operator's commands beside Celery's own `inspect` and `control`.

Celery and Flower can show a failed task but not send a failed message again; these commands can,
through the same store scripts as the API (so a retry never resends a message the provider accepted).
They reach Redis directly with the service's settings, for every API key: they are for whoever
operates the workers, not for API clients. Registered as a Celery sub-command through the
`celery.commands` entry point in pyproject.toml (the only way Celery's CLI takes new commands).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import click
import redis

from dispatcher import statuses
from dispatcher.failed_messages import Cursor, FailedFilter
from tasks import runtime


@click.group(name="dispatcher")
def dispatcher() -> None:
    """Failed messages, retries and the state of the dispatcher."""
    store = runtime.services().store
    try:
        store.redis.ping()
    except redis.RedisError as error:  # an answer of zeros would look like an idle service: say it plainly
        raise click.ClickException(f"cannot reach Redis at {where(runtime.settings().redis_url)}: {error}") from None


def where(url: str) -> str:
    """A Redis URL as an operator may see it on screen: no password."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


@dispatcher.command()
@click.option("--batch", "batch_id", help="only this batch's messages")
@click.option("--provider", help="only this provider's messages")
@click.option("--error-code", help="only failures with this provider or internal code")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--cursor", help="the cursor printed at the end of the previous page")
def failed(batch_id, provider, error_code, limit, cursor) -> None:
    """List failed messages, oldest failure first: id, failed at, provider, error."""
    store = runtime.services().store
    wanted = FailedFilter(batch_id=batch_id, provider=provider, error_code=error_code)
    ids, next_cursor = runtime.services().failed.page(None, wanted, limit, Cursor.parse(cursor) if cursor else None)
    for message in store.get_many(ids):
        if message is None:
            continue
        error = message.last_error or {}
        click.echo(
            f"{message.message_id}  {message.updated_at}  {message.provider:<9}  "
            f"{error.get('code', '')}: {error.get('message', '')}"
        )
    click.echo(f"{len(ids)} failed" + (f"; next page: --cursor '{next_cursor}'" if next_cursor else ""))


@dispatcher.command()
@click.argument("message_id")
def retry(message_id: str) -> None:
    """Send a failed message again (same id, history kept, fresh attempts)."""
    services = runtime.services()
    grace = services.settings.queued_republish_after_seconds
    outcome = services.failed.retry(message_id, services.messages.task_for, grace)
    if outcome != "ok":
        raise click.ClickException(f"{message_id} not retried: {outcome}")
    click.echo(f"{message_id} queued again")


@dispatcher.command(name="retry-batch")
@click.argument("batch_id")
def retry_batch(batch_id: str) -> None:
    """Send a batch's failed messages again (not those the provider already accepted)."""
    services = runtime.services()
    batch = services.store.batch(batch_id)
    if batch is None:
        raise click.ClickException(f"no batch {batch_id}")
    failed = services.failed
    outcomes = failed.retry_many(
        failed.failed_in_batch(batch_id, int(batch["total"])),
        services.messages.task_for,
        services.settings.queued_republish_after_seconds,
    )
    click.echo(
        f"{batch_id}: {outcomes.count('ok')} queued again, "
        f"{outcomes.count('already_sent')} left (the provider had accepted them)"
    )


@dispatcher.command()
def stats() -> None:
    """Messages by status, the queue, what is held, callbacks, and the workers online."""
    from tasks.control import workers_online

    services = runtime.services()
    settings, store, outbox = services.settings, services.store, services.outbox
    click.echo(f"{'redis':<22}{where(settings.redis_url)}")
    counts = store.counts()
    for status in statuses.ALL:
        click.echo(f"{status:<22}{max(0, counts.get(status, 0)):>10}")
    click.echo(f"{'tasks in broker':<22}{store.redis.llen(settings.queue_name):>10}")
    click.echo(f"{'held by pacing':<22}{store.held():>10}")
    click.echo(f"{'held by pools':<22}{services.pools.held():>10}")
    click.echo(f"{'callbacks waiting':<22}{outbox.waiting():>10}")
    click.echo(f"{'callbacks dead':<22}{outbox.dead_count():>10}")
    workers = workers_online(settings.redis_url, timeout=1.0)
    click.echo(f"{'workers online':<22}{len(workers):>10}  {' '.join(workers)}")
    if not workers:
        click.echo(
            f"no worker answers on this Redis: nothing consumes {settings.queue_name!r}. Start one "
            "(`celery -A tasks worker`, or `make run`), or point REDIS_URL at the Redis your workers use."
        )
