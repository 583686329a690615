"""The operator's path as a new user walks it: `make run` in one terminal, the README's commands in another.

The stack runs from a copy of the project (tests/conftest.py: project_copy), started as `make run` starts it.
Every operator command then runs in a clean environment, as a second terminal in the project folder would: the
virtualenv's tools on PATH, nothing else exported.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from scripts.embedded_redis import free_port
from scripts.procfile import procfile_command
from tests.conftest import start_make_run, wait_for

DEV_KEY = "dev-api-key-12345"
VENV_BIN = Path(sys.executable).parent


def second_terminal(project: Path, **exported: str) -> dict[str, str]:
    """A terminal in `project` that sourced .venv/bin/activate and exported nothing else (plus `exported`).

    PYTHONPATH stands for the virtualenv a clone makes for itself: this one's editable install of the project
    points at the checkout under test, not at the copy."""
    path = os.pathsep.join([str(VENV_BIN), "/usr/bin", "/bin"])
    return {"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), "PYTHONPATH": str(project), **exported}


def run(project: Path, command: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def project(project_copy) -> Path:
    return project_copy


@pytest.fixture
def stack(project):
    """`make run`'s launcher in the copy, from a terminal with nothing exported but free ports; yields the API."""
    port, flower_port = free_port(), free_port()
    env = second_terminal(project, PORT=str(port), FLOWER_PORT=str(flower_port), MOCK_LATENCY_MS="0")
    process = start_make_run(project, env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _get(f"{base}/health"), 60, interval=0.2, what="the API")
        yield base
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
    assert not (project / "var" / "run" / "stack.env").exists(), "make run left its stack file behind"


def _get(url, **kwargs):
    try:
        return requests.get(url, timeout=1, **kwargs)
    except requests.RequestException:
        return None


def _sent(base: str, external_id: str) -> str:
    answer = requests.post(
        f"{base}/v1/messages/send",
        json={"recipient_phone": "+5564999998888", "message_body": "Olá", "external_id": external_id},
        headers={"X-API-Key": DEV_KEY},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    url, headers = f"{base}/v1/messages/{answer.json()['message_id']}", {"X-API-Key": DEV_KEY}
    wait_for(lambda: _get(url, headers=headers).json()["status"] == "sent", 60, what="the worker")
    return answer.json()["message_id"]


def test_a_second_terminal_finds_the_stack_make_run_started(project, stack):
    _sent(stack, "second-terminal-1")
    env = second_terminal(project)

    ping = run(project, ["celery", "-A", "tasks", "inspect", "ping"], env)
    assert ping.returncode == 0 and "pong" in ping.stdout, ping.stdout + ping.stderr

    stats = run(project, ["celery", "-A", "tasks", "dispatcher", "stats"], env)
    assert stats.returncode == 0, stats.stderr
    lines = dict(line.rsplit(None, 1) for line in stats.stdout.splitlines() if line.split()[-1].isdigit())
    assert int(lines["sent"]) >= 1, stats.stdout
    assert "no worker answers" not in stats.stdout, stats.stdout

    flower = run(project, ["celery", "-A", "tasks", "flower"], env)  # make run's Flower holds the stack's port
    assert flower.returncode == 2 and "Traceback" not in flower.stderr, flower.stderr
    assert "is taken: is Flower already running there" in flower.stderr, flower.stderr

    (project / "contacts.csv").write_text("phone,name\n+5564999990001,Ana\n+5564999990002,Bia\n")
    csv = run(project, ["flask", "--app", "wsgi", "dispatch-csv", "contacts.csv", "--template", "Olá {{name}}"], env)
    assert csv.returncode == 0, csv.stdout + csv.stderr
    assert "2 rows accepted, 0 refused" in csv.stdout, csv.stdout


def test_without_a_running_stack_the_cli_says_what_is_missing(project):
    """Before `make run` (or after it stopped): no development key is found, and the CLI says so in one line."""
    answer = run(project, ["celery", "-A", "tasks", "dispatcher", "stats"], second_terminal(project))
    assert answer.returncode == 2
    assert answer.stderr.strip().splitlines() == [
        "dispatcher: configuration error: API_KEY must be set: one key, or several separated by commas, "
        "each `key` or `account:key`"
    ]


def test_the_cli_says_when_it_cannot_reach_redis(project):
    env = second_terminal(
        project, APP_ENV="development", API_KEY=DEV_KEY, REDIS_URL=f"redis://:secret@127.0.0.1:{free_port()}/0"
    )
    answer = run(project, ["celery", "-A", "tasks", "dispatcher", "stats"], env)
    assert answer.returncode == 1
    [line] = answer.stderr.strip().splitlines()
    assert line.startswith("Error: cannot reach Redis at redis://127.0.0.1:") and "secret" not in line, line
    assert not answer.stdout


ENTRY_POINTS = {
    "web": ["bash", "-c", procfile_command("web")],
    "worker": ["bash", "-c", f"exec {procfile_command('worker')}"],
    "callbacks": ["bash", "-c", f"exec {procfile_command('callbacks')}"],
    "flower": ["bash", "-c", f"exec {procfile_command('flower')}"],
    "celery inspect": ["celery", "-A", "tasks", "inspect", "ping"],
    "celery dispatcher": ["celery", "-A", "tasks", "dispatcher", "failed"],
    "dispatch-csv": ["flask", "--app", "wsgi", "dispatch-csv", "README.md"],
}


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_every_entry_point_stops_on_a_bad_setting_with_one_line_naming_it(project, entry_point):
    env = second_terminal(
        project, APP_ENV="development", API_KEY=DEV_KEY, REDIS_URL="redis://127.0.0.1:1/0", DEFAULT_REGION="Brazil"
    )
    answer = run(project, ENTRY_POINTS[entry_point], {**env, "PORT": str(free_port())})
    assert answer.returncode == 2, answer.stdout + answer.stderr
    assert "Traceback" not in answer.stderr + answer.stdout
    errors = [line for line in answer.stderr.splitlines() if "configuration error" in line]
    assert errors == [
        "dispatcher: configuration error: DEFAULT_REGION must be a two-letter country code such as BR; got 'BRAZIL'"
    ], answer.stderr
