"""`make run`: the whole stack (API, worker, Flower) on one machine, with the mock provider.

Starts a private Redis under var/redis unless REDIS_URL is set (in the environment or .env), then
the Procfile's processes with honcho. Ctrl-C stops them all, Redis last. While it runs, what it gave the stack
(its Redis URL, the development key, ...) is in var/run/stack.env, so that the celery CLI, Flower and the CSV
command find the same stack from a second terminal (dispatcher/dev_stack.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from dotenv import load_dotenv

from dispatcher import dev_stack
from scripts.embedded_redis import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
DEV_DEFAULTS = {
    "API_KEY": "dev-api-key-12345",  # the reach-town contract's development key
    "APP_ENV": "development",
    "WHATSAPP_PROVIDER": "mock",
    "FLOWER_BASIC_AUTH": "admin:admin",
    "FLOWER_PORT": "5555",
}
# What a second terminal needs to reach this stack: written to the stack file while it runs.
SHARED = (*DEV_DEFAULTS, "REDIS_URL", "PORT")


def main() -> int:
    load_dotenv(ROOT / ".env")
    env = {**DEV_DEFAULTS, **os.environ}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # the virtualenv's granian, celery
    redis_server = None
    if not env.get("REDIS_URL"):
        data_dir = env.get("EMBEDDED_REDIS_DIR") or ROOT / "var" / "redis"
        redis_server = EmbeddedRedis(data_dir, appendonly=True).start()
        env["REDIS_URL"] = redis_server.url
        print(f"embedded Redis on {redis_server.url} (data in {data_dir}, appendonly, noeviction)", flush=True)
    port = env.setdefault("PORT", "3001")
    key = env["API_KEY"] if env["API_KEY"] == DEV_DEFAULTS["API_KEY"] else "<your API_KEY>"
    print(
        f"API http://localhost:{port} (X-API-Key: {key}), docs http://localhost:{port}/docs, "
        f"Flower http://localhost:{env['FLOWER_PORT']} ({env['FLOWER_BASIC_AUTH'].split(':')[0]})",
        flush=True,
    )
    try:
        dev_stack.write({name: env[name] for name in SHARED}, os.getpid())
        honcho = subprocess.Popen(
            [sys.executable, "-m", "honcho", "-f", str(ROOT / "Procfile"), "start", "-p", port], cwd=ROOT, env=env
        )
        try:
            return honcho.wait()
        except KeyboardInterrupt:  # from a terminal honcho got the Ctrl-C too; from elsewhere, pass it on
            honcho.send_signal(signal.SIGTERM)
            return honcho.wait()
    finally:
        dev_stack.remove()
        if redis_server:
            redis_server.stop()


if __name__ == "__main__":
    sys.exit(main())
