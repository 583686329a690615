"""The stack `make run` started, found again from a second terminal.

`make run` (scripts/run_stack.py) starts its own Redis on a free port and gives the stack a development key. A
second terminal in the project folder knows neither, so `celery -A tasks inspect ping` would talk to another
Redis (or to none) and answer "No nodes replied" while the workers run. So `make run` writes what it gave the
stack to `var/run/stack.env`, with its own process id, and removes it when it stops; the settings read it
(`apply_running_stack`) only where it cannot mislead:

- in development only: never when APP_ENV or NODE_ENV says anything but `development`;
- only when no Redis is configured (no REDIS_URL, REDIS_HOST in the environment or .env): a process told where
  its Redis is (a deployment, a test) is never redirected;
- only while the `make run` that wrote it still runs: a file left by a killed one is ignored.

Values already in the environment win over the file's, as they do over .env's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from dotenv import dotenv_values

STACK_FILE = Path(__file__).resolve().parent.parent / "var" / "run" / "stack.env"
PID = "MAKE_RUN_PID"  # the file's own entry: which process wrote it


def write(values: Mapping[str, str], pid: int, path: Path = STACK_FILE) -> None:
    """Record what `make run` gave its stack (the development key, its Redis URL, ...), readable only by its user."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{PID}={pid}", *(f"{name}={_quoted(value)}" for name, value in values.items())]
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # a file left by an earlier run keeps its mode otherwise
    with os.fdopen(descriptor, "w") as stack_file:
        stack_file.write("\n".join(lines) + "\n")


def remove(path: Path = STACK_FILE) -> None:
    path.unlink(missing_ok=True)


def running_stack(path: Path = STACK_FILE) -> dict[str, str]:
    """The values of the stack file, if the `make run` that wrote it still runs; else nothing."""
    try:
        values = {name: value for name, value in dotenv_values(path).items() if value is not None}
    except OSError:
        return {}
    if not _alive(values.pop(PID, "")):
        return {}
    return values


def apply_running_stack(environ: MutableMapping[str, str], path: Path = STACK_FILE) -> bool:
    """Fill in `environ` (the process environment, .env loaded) from a running `make run`, where the module's
    docstring says it may; returns whether it did."""
    environment = environ.get("APP_ENV") or environ.get("NODE_ENV") or "development"
    if environment != "development" or environ.get("REDIS_URL") or environ.get("REDIS_HOST"):
        return False
    values = running_stack(path)
    for name, value in values.items():
        environ.setdefault(name, value)
    return bool(values)


def _alive(pid: str) -> bool:
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except OSError:  # none by that id, or another user's: not the `make run` that wrote the file
        return False
    return True


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
