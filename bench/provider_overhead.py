"""CPU the provider layer adds to one send, over the bare HTTP call it makes.

Usage: python -m bench.provider_overhead [N]
Against a local server that answers at once (bench/instant_server.py, in its own process), each
provider sends N messages through `Provider.send`; then the same N requests go out as bare
`requests.Session.post` calls with the same body. The difference in this process's CPU time, per
send, is what our layer costs: building the payload, logging, sorting the answer.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time

import requests

from bench.common import ROOT, wait_until
from dispatcher.provider_setup import build_provider
from dispatcher.settings import load_settings
from providers.base import OutboundMessage
from scripts.embedded_redis import free_port

MESSAGE = OutboundMessage("msg-bench", "+5564999998888", "Olá! Mensagem de teste.", "bench-1")
ENV = {
    "evolution": {"EVOLUTION_API_URL": "{url}", "EVOLUTION_API_KEY": "k", "EVOLUTION_INSTANCE": "loja-1"},
    "twilio": {
        "TWILIO_API_BASE_URL": "{url}",
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "t",
        "TWILIO_WHATSAPP_FROM": "+14155238886",
    },
    "meta": {"META_API_BASE_URL": "{url}", "META_ACCESS_TOKEN": "t", "META_PHONE_NUMBER_ID": "1234"},
    "webhook": {"WEBHOOK_PROVIDER_URL": "{url}/hook", "WEBHOOK_PROVIDER_SECRET": "s"},
}


def _answers(url: str) -> bool:
    try:
        requests.post(f"{url}/hook", timeout=1)
        return True
    except requests.RequestException:
        return False


def _cpu_per_call(call, count: int) -> float:
    began = time.process_time()
    for _ in range(count):
        call()
    return (time.process_time() - began) / count


def overhead(name: str, url: str, count: int, rounds: int = 5) -> tuple[float, float]:
    """(µs of CPU per send through the provider, µs per bare HTTP call), each the best of `rounds`
    rounds, since other work on this machine only ever adds time."""
    env = {
        "API_KEY": "bench-key-0123456789",
        "WHATSAPP_PROVIDER": name,
        **{k: v.format(url=url) for k, v in ENV[name].items()},
    }
    provider = build_provider(name, load_settings(env))
    session = requests.Session()
    body = {"number": "5564999998888", "text": MESSAGE.text}
    target = f"{url}/message/sendText/loja-1" if name == "evolution" else f"{url}/hook"

    def bare():
        session.post(target, json=body, timeout=5)

    def ours():
        provider.send(MESSAGE)

    _cpu_per_call(ours, 50)  # warm both connection pools
    _cpu_per_call(bare, 50)
    per_round = count // rounds
    ours_best = min(_cpu_per_call(ours, per_round) for _ in range(rounds))
    bare_best = min(_cpu_per_call(bare, per_round) for _ in range(rounds))
    return ours_best * 1e6, bare_best * 1e6


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "bench.instant_server", str(port)], cwd=ROOT)
    try:
        wait_until(lambda: _answers(url), 10, "the instant server")
        for name in ENV:
            if name != "webhook" and importlib.util.find_spec(f"providers.{name}") is None:
                continue
            ours, bare = overhead(name, url, count)
            print(
                f"provider layer, {name}: {ours - bare:+.0f} µs CPU per send over the bare HTTP call "
                f"({ours:.0f} µs vs {bare:.0f} µs, {count} sends)"
            )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
