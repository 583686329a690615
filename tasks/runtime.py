"""What a worker process shares between its tasks: its services (`dispatcher.services`) and its lease keeper.

Built once per process on first use (after a prefork child is forked), so connection pools
are never shared across processes. The celery CLI's commands use the same services.
"""

from __future__ import annotations

import functools

from dispatcher.services import Services, build_services
from dispatcher.settings import Settings, settings_or_exit
from tasks.envelope import publishers


@functools.cache
def settings() -> Settings:
    """Read alone, without building the services: logging is set up from it before a prefork pool forks."""
    return settings_or_exit()


@functools.cache
def services() -> Services:
    return build_services(settings(), publishers(settings().queue_name))


@functools.cache
def keeper():
    """The process's lease keeper (see tasks/leases.py)."""
    from tasks.leases import LeaseKeeper

    return LeaseKeeper(services().store)
