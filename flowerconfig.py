"""Flower's settings: Flower reads this file from the working directory (its `--conf` default) at start.

Flower shows every task's arguments and can revoke tasks and resize worker pools, so outside
development it must never run open: without FLOWER_BASIC_AUTH this file stops Flower before it
listens, instead of leaving a dashboard anyone can reach. It also keeps Flower's task history on
disk, so a restart does not empty the dashboard. A port already taken (in a second terminal, the
Flower that `make run` serves) stops it with one line saying so, not a traceback.
"""

import os
import socket
import sys
from pathlib import Path

from tornado.options import options as _flower_options  # Flower's own, the command line's --port already read

from dispatcher.settings import settings_or_exit

_settings = settings_or_exit()  # also loads .env, as every process of the service does
_environment = _settings.environment
_credentials = [entry.strip() for entry in os.environ.get("FLOWER_BASIC_AUTH", "").split(",") if entry.strip()]

if not all(user and password for user, _, password in (entry.partition(":") for entry in _credentials)):
    sys.exit("FLOWER_BASIC_AUTH must be user:password, or several separated by commas; Flower not started")
# Set even when empty: Flower's own reading of FLOWER_BASIC_AUTH keeps spaces after commas, and turns
# an empty value into [""], a password nobody can type.
basic_auth = _credentials
if not _credentials and _environment in ("development", "test"):
    print(f"FLOWER_BASIC_AUTH is not set: Flower runs without a password (APP_ENV={_environment})", file=sys.stderr)
elif not _credentials:
    sys.exit(
        f"FLOWER_BASIC_AUTH is not set: refusing to start Flower without a password in {_environment}. "
        "Set FLOWER_BASIC_AUTH=user:password (or APP_ENV=development on your own machine)."
    )

# Flower keeps what it saw of tasks in memory only, unless persistent: then it loads this file at
# start, saves it at a clean stop and every state_save_interval ms (what a crash can lose).
# Flower turns workers' task events on by itself unless told not to: TASK_EVENTS=off must stay off.
enable_events = _settings.task_events
persistent = True
db = str(Path(__file__).resolve().parent / os.environ.get("FLOWER_DB", "var/flower.db"))
state_save_interval = 60_000
# Our task arguments are ids only (a message id, a batch id and a row range), so showing them is safe.
tasks_columns = "name,uuid,state,args,result,received,runtime,worker"
Path(db).parent.mkdir(parents=True, exist_ok=True)


def _taken(address: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return True
    return False


# Only when Flower reads this file (it defines its options first); a test imports it alone too.
if "port" in _flower_options:
    # Flower read FLOWER_PORT before this file ran, so a port that only a running `make run` gave (its stack file,
    # which the settings above read: dispatcher/dev_stack.py) is set here. A --port on the command line wins.
    _port_given = any(arg == "--port" or arg.startswith("--port=") for arg in sys.argv[1:])
    port = _flower_options.port if _port_given else int(os.environ.get("FLOWER_PORT") or _flower_options.port)
    if _taken(_flower_options.address or "", port):
        print(
            f"dispatcher: port {port} is taken: is Flower already running there (make run serves it at "
            f"http://localhost:{port})? Give another with --port=PORT.",
            file=sys.stderr,
        )
        sys.exit(2)
