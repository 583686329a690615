"""When a process takes its settings from the stack `make run` started (dispatcher/dev_stack.py), and when not."""

import os
import subprocess
import sys

import pytest

from dispatcher import dev_stack

STACK = {"API_KEY": "dev-api-key-12345", "APP_ENV": "development", "REDIS_URL": "redis://127.0.0.1:40001/0"}


@pytest.fixture
def stack_file(tmp_path):
    path = tmp_path / "var" / "run" / "stack.env"
    dev_stack.write({**STACK, "FLOWER_BASIC_AUTH": "admin:it's \\ odd"}, os.getpid(), path)
    return path


def test_a_terminal_with_nothing_set_gets_the_running_stack(stack_file):
    environ: dict[str, str] = {}
    assert dev_stack.apply_running_stack(environ, stack_file)
    assert environ == {**STACK, "FLOWER_BASIC_AUTH": "admin:it's \\ odd"}
    assert stack_file.stat().st_mode & 0o077 == 0  # the development key is for its user only


def test_what_the_terminal_exported_wins(stack_file):
    environ = {"API_KEY": "mine-0123456789abcdef", "APP_ENV": "development"}
    assert dev_stack.apply_running_stack(environ, stack_file)
    assert environ["API_KEY"] == "mine-0123456789abcdef" and environ["REDIS_URL"] == STACK["REDIS_URL"]


@pytest.mark.parametrize(
    "environ",
    [
        {"APP_ENV": "production"},
        {"NODE_ENV": "production"},
        {"APP_ENV": "test"},
        {"REDIS_URL": "redis://elsewhere:6379/0"},
        {"REDIS_HOST": "elsewhere"},
    ],
)
def test_a_process_told_its_environment_or_its_redis_is_never_redirected(stack_file, environ):
    before = dict(environ)
    assert not dev_stack.apply_running_stack(environ, stack_file)
    assert environ == before


def test_a_stack_file_left_by_a_killed_make_run_is_ignored(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    path = tmp_path / "stack.env"
    dev_stack.write(STACK, gone.pid, path)
    environ: dict[str, str] = {}
    assert not dev_stack.apply_running_stack(environ, path)
    assert environ == {}


def test_no_stack_file_changes_nothing(tmp_path):
    environ: dict[str, str] = {}
    assert not dev_stack.apply_running_stack(environ, tmp_path / "absent.env")
    assert environ == {}
