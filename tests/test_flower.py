"""Flower as deployed: the Procfile's command, its password enforced, its history kept, seen in a real browser.

The browser is Debian's headless Chromium; screenshots land in test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from scripts.embedded_redis import free_port
from scripts.procfile import procfile_command
from tests.conftest import API_KEY, ARTIFACTS, CHROMIUM_FLAGS, ROOT, Process, auth, wait_for

CREDENTIALS = ("ops", "secret")


@pytest.fixture
def browse(chromium, tmp_path):
    """Open a URL in headless Chromium (a fresh profile each time); return the DOM after its scripts ran."""

    def run(url: str, screenshot: Path, height: int = 900) -> str:
        profile = tmp_path / f"chromium-{len(list(tmp_path.glob('chromium-*')))}"
        profile.mkdir()
        ARTIFACTS.mkdir(exist_ok=True)
        screenshot.unlink(missing_ok=True)
        args = [chromium, *CHROMIUM_FLAGS, f"--window-size=1280,{height}", f"--user-data-dir={profile}"]
        args.append("--virtual-time-budget=5000")  # lets the page's scripts fetch and draw before the capture
        shot = subprocess.run([*args, f"--screenshot={screenshot}", url], capture_output=True, text=True, timeout=60)
        assert screenshot.exists(), f"Chromium wrote no screenshot:\n{shot.stderr[-3000:]}"
        # A blank page compresses to about 5 KB (what a #fragment scroll gave, headless); any real page to far more.
        assert screenshot.stat().st_size > 20_000, f"{screenshot} looks blank"
        dom = subprocess.run([*args, "--dump-dom", url], capture_output=True, text=True, timeout=60)
        assert dom.returncode == 0, dom.stderr[-3000:]
        return dom.stdout

    return run


@pytest.fixture
def start_flower(base_env, tmp_path):
    """Start the Procfile's `flower` line on a free port, its state in tmp_path; returns (process, URL)."""
    processes: list[Process] = []

    def start(**overrides: str) -> tuple[Process, str]:
        port = free_port()
        env = {
            **base_env,
            "FLOWER_PORT": str(port),
            "FLOWER_DB": str(tmp_path / "flower.db"),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            **overrides,
        }
        flower = Process(["bash", "-c", f"exec {procfile_command('flower')}"], env, "flower")
        processes.append(flower)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _get(url) is not None or flower._died(), 30, what="Flower to answer")
        if flower._died():
            raise AssertionError(f"Flower exited with {flower.popen.returncode}:\n{flower.output[-3000:]}")
        return flower, url

    yield start
    for process in processes:
        process.stop()


def _get(url: str, **kwargs) -> requests.Response | None:
    try:
        return requests.get(url, timeout=2, **kwargs)
    except requests.RequestException:
        return None


def _flower_task(url: str, message_id: str) -> dict | None:
    """The send_message task of `message_id` as Flower's API shows it, once Flower saw it succeed."""
    answer = _get(f"{url}/api/tasks", auth=CREDENTIALS)
    tasks = answer.json().values() if answer is not None and answer.status_code == 200 else []
    return next((task for task in tasks if message_id in (task.get("args") or "") and task["state"] == "SUCCESS"), None)


def _run_flower(env: dict[str, str]) -> subprocess.CompletedProcess:
    """The Procfile's `flower` line, expected to stop on its own (a refusal)."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "FLOWER_PORT": str(free_port()),
        **env,
    }
    command = ["bash", "-c", f"exec {procfile_command('flower')}"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=20)


def test_flower_refuses_to_start_without_a_password_outside_development(base_env):
    # "" rather than unset, so that a FLOWER_BASIC_AUTH in a developer's .env cannot fill it in.
    production = {"APP_ENV": "production", "API_KEY": "a-production-key-0123456789", "ADMIN_API_KEY": ""}
    done = _run_flower({**base_env, **production, "FLOWER_BASIC_AUTH": ""})
    assert done.returncode != 0
    assert "FLOWER_BASIC_AUTH is not set" in done.stderr
    assert "production" in done.stderr


def test_flower_refuses_a_password_it_could_not_check(base_env):
    done = _run_flower({**base_env, "FLOWER_BASIC_AUTH": "ops:secret, ops"})
    assert done.returncode != 0
    assert "FLOWER_BASIC_AUTH must be user:password" in done.stderr


def test_flower_runs_open_in_development(start_flower):
    _, url = start_flower(APP_ENV="development", FLOWER_BASIC_AUTH="")
    assert _get(f"{url}/tasks").status_code == 200


def test_flower_shows_our_task_in_a_browser_and_keeps_it_across_a_restart(
    start_worker, start_web, start_flower, browse
):
    flower, flower_url = start_flower(FLOWER_BASIC_AUTH=f"{CREDENTIALS[0]}:{CREDENTIALS[1]}")
    start_worker()
    api = start_web()
    answer = requests.post(
        f"{api}/v1/messages/send",
        json={"recipient_phone": "+5564999998888", "message_body": "Olá", "external_id": "flower-1"},
        headers=auth(API_KEY),
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    message_id = answer.json()["message_id"]

    task = wait_for(lambda: _flower_task(flower_url, message_id), 20, interval=0.2, what="Flower to see the task")
    assert task["name"] == "dispatch.send_message"
    assert _get(f"{flower_url}/tasks").status_code == 401
    assert _get(f"{flower_url}/tasks", auth=("ops", "wrong")).status_code == 401
    assert _get(f"{flower_url}/tasks", auth=CREDENTIALS).status_code == 200

    flower.stop()  # SIGTERM, as a deploy does: Flower saves its state on the way out
    assert flower.popen.returncode == 0, flower.output[-3000:]
    _, flower_url = start_flower(FLOWER_BASIC_AUTH=f"{CREDENTIALS[0]}:{CREDENTIALS[1]}")
    assert _flower_task(flower_url, message_id), "the restarted Flower forgot the task"

    # Chromium answers Flower's 401 with the URL's credentials, then reuses them for the page's own requests.
    logged_in = flower_url.replace("http://", f"http://{CREDENTIALS[0]}:{CREDENTIALS[1]}@")
    page = browse(f"{logged_in}/tasks", ARTIFACTS / "flower-tasks.png")
    assert "dispatch.send_message" in page
    assert message_id in page

    docs = browse(f"{api}/docs", ARTIFACTS / "api-docs.png", height=1900)  # tall enough to show the send endpoint
    assert 'id="post-/v1/messages/send"' in docs
