import os
import subprocess
import sys

import pytest

from dispatcher.accounts import key_id
from dispatcher.settings import SettingsError, load_settings
from tests.conftest import ROOT

MINIMAL = {"API_KEY": "a-long-test-api-key-0123"}


def test_defaults_match_the_seeds():
    settings = load_settings(MINIMAL)
    assert settings.port == 3001
    assert settings.host == "0.0.0.0"
    assert settings.whatsapp_provider == "mock"
    assert settings.queue_name == "message-dispatch-queue"
    assert settings.job_attempts == 3
    assert settings.job_backoff_delay_ms == 5000
    assert settings.worker_concurrency == 5
    assert settings.worker_api_call_delay_ms == 1000
    assert settings.job_remove_on_complete is None
    assert settings.job_remove_on_fail == 1000
    assert settings.default_region == "BR"
    assert settings.provider_settings["mock"].latency_ms == 100
    assert settings.provider_settings["mock"].failure_rate == 0
    assert settings.message_retention_days == 30
    assert settings.redis_url == "redis://127.0.0.1:6379/0"


def test_api_key_is_required_and_may_hold_several_keys():
    with pytest.raises(SettingsError, match="API_KEY"):
        load_settings({})
    keys = load_settings({"APP_ENV": "test", "API_KEY": " a, b ,,c "}).api_keys
    assert [api_key.key for api_key in keys] == ["a", "b", "c"]
    # A plain key is an account of its own, named by its id: the scope records stored before accounts carry.
    assert [api_key.account for api_key in keys] == [key_id("a"), key_id("b"), key_id("c")]


def test_api_key_entries_may_name_their_account():
    keys = load_settings({"APP_ENV": "test", "API_KEY": "reach:old-key, reach:new-key,plain-key"}).api_keys
    assert [(api_key.account, api_key.key) for api_key in keys] == [
        ("reach", "old-key"),
        ("reach", "new-key"),
        (key_id("plain-key"), "plain-key"),
    ]


@pytest.mark.parametrize("entry", ["bad name:key", "reach:", ":key", "x" * 65 + ":key", "ré:key"])
def test_a_bad_account_entry_is_refused_naming_api_key(entry):
    with pytest.raises(SettingsError, match="API_KEY"):
        load_settings({"API_KEY": entry})


PRODUCTION = {"APP_ENV": "production", "API_KEY": "reach:a-long-production-key-0123"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("API_KEY", "dev-api-key-12345"),
        ("API_KEY", "reach:short-key"),
        ("API_KEY", "reach:replace-with-a-long-random-key"),
        ("ADMIN_API_KEY", "change-me"),
        ("WEBHOOK_SECRET", "replace-with-a-long-random-secret"),
        ("CALLBACK_SECRETS", "reach:replace-with-a-long-secret"),
        ("FLOWER_BASIC_AUTH", "admin:admin"),
        ("FLOWER_BASIC_AUTH", "ops:a-long-enough-password, admin:change-me"),
        ("EVOLUTION_WEBHOOK_SECRET", "secret"),
        ("META_WEBHOOK_VERIFY_TOKEN", "token"),
        ("WEBHOOK_PROVIDER_SECRET", "password"),
        ("METRICS_TOKEN", "1234"),
    ],
)
def test_production_refuses_development_values_and_short_secrets_naming_the_variable(name, value):
    env = {**PRODUCTION, name: value}
    with pytest.raises(SettingsError, match=f"^{name}"):
        load_settings(env)
    load_settings({**env, "APP_ENV": "development"})  # on a developer's machine they are fine


def test_production_starts_with_secrets_of_its_own():
    load_settings(
        {**PRODUCTION, "ADMIN_API_KEY": "an-operators-long-key-42", "FLOWER_BASIC_AUTH": "ops:a-long-password-here"}
    )


def test_redis_url_wins_over_host_and_port():
    settings = load_settings({**MINIMAL, "REDIS_URL": "rediss://:secret@example:6380/1", "REDIS_HOST": "other"})
    assert settings.redis_url == "rediss://:secret@example:6380/1"


def test_redis_host_port_password_build_a_url():
    settings = load_settings({**MINIMAL, "REDIS_HOST": "cache", "REDIS_PORT": "6380", "REDIS_PASSWORD": "p@ss"})
    assert settings.redis_url == "redis://:p%40ss@cache:6380/0"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "http"),
        ("PORT", "70000"),
        ("JOB_ATTEMPTS", "0"),
        ("JOB_BACKOFF_DELAY", "-5"),
        ("WORKER_CONCURRENCY", "five"),
        ("WORKER_API_CALL_DELAY", "1s"),
        ("WHATSAPP_PROVIDER", "carrier-pigeon"),
        ("LOG_LEVEL", "loud"),
        ("MOCK_FAILURE_RATE", "2"),
        ("REDIS_URL", "http://localhost"),
        ("DEFAULT_REGION", "Brazil"),
        ("WORKER_RATE_LIMIT", "fast"),
        ("JOB_REMOVE_ON_COMPLETE", "maybe"),
        ("LEASE_EXPIRED_ACTION", "pray"),
    ],
)
def test_a_wrong_value_names_its_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        load_settings({**MINIMAL, name: value})


@pytest.mark.parametrize(("value", "kept"), [("true", 0), ("false", None), ("1000", 1000)])
def test_job_remove_on_complete_keeps_seed_000_meaning(value, kept):
    assert load_settings({**MINIMAL, "JOB_REMOVE_ON_COMPLETE": value}).job_remove_on_complete == kept


def test_a_wrong_value_stops_the_worker_with_the_variable_named():
    env = {**os.environ, **MINIMAL, "JOB_ATTEMPTS": "lots"}
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "tasks", "worker"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode != 0
    assert "JOB_ATTEMPTS" in result.stderr


@pytest.mark.parametrize(
    "command", [["-m", "celery", "-A", "tasks", "worker"], ["-c", "import wsgi"]], ids=["worker", "web"]
)
def test_production_processes_refuse_the_development_key(command):
    env = {**os.environ, "APP_ENV": "production", "API_KEY": "dev-api-key-12345", "ADMIN_API_KEY": ""}
    result = subprocess.run([sys.executable, *command], env=env, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode != 0
    assert "API_KEY holds a development value" in result.stderr


EVOLUTION = {"EVOLUTION_API_URL": "http://evolution:8080", "EVOLUTION_API_KEY": "k", "EVOLUTION_INSTANCE": "a, b"}
TWILIO = {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "t", "TWILIO_WHATSAPP_FROM": "+14155238886"}
META = {"META_ACCESS_TOKEN": "t", "META_PHONE_NUMBER_ID": "106540352242922"}


def test_every_enabled_provider_is_configured_at_start():
    settings = load_settings(
        {
            **MINIMAL,
            "WHATSAPP_PROVIDER": "evolution",
            "WHATSAPP_PROVIDERS": "twilio,meta,mock",
            **EVOLUTION,
            **TWILIO,
            **META,
            "PUBLIC_BASE_URL": "https://dispatch.example.com",
        }
    )
    assert settings.whatsapp_providers == ("evolution", "twilio", "meta", "mock")
    assert settings.provider_settings["evolution"].instances == ("a", "b")
    assert settings.provider_settings["twilio"].senders == ("+14155238886",)
    assert settings.provider_settings["twilio"].status_callback_url == "https://dispatch.example.com/v1/webhooks/twilio"
    assert (
        settings.provider_settings["meta"].api_base_url == "https://graph.facebook.com"
        and settings.provider_settings["meta"].api_version == "v23.0"
    )


@pytest.mark.parametrize(
    ("provider", "env", "missing"),
    [
        ("evolution", {**EVOLUTION, "EVOLUTION_API_URL": ""}, "EVOLUTION_API_URL"),
        ("evolution", {**EVOLUTION, "EVOLUTION_INSTANCE": ""}, "EVOLUTION_INSTANCE"),
        ("twilio", {**TWILIO, "TWILIO_AUTH_TOKEN": ""}, "TWILIO_AUTH_TOKEN"),
        ("twilio", {**TWILIO, "TWILIO_ACCOUNT_SID": "AC1"}, "TWILIO_ACCOUNT_SID"),
        ("twilio", {**TWILIO, "TWILIO_WHATSAPP_FROM": ""}, "TWILIO_WHATSAPP_FROM"),
        ("meta", {**META, "META_ACCESS_TOKEN": ""}, "META_ACCESS_TOKEN"),
        ("meta", {**META, "META_API_VERSION": "23"}, "META_API_VERSION"),
        ("webhook", {"WEBHOOK_PROVIDER_SECRET": "a-long-provider-secret"}, "WEBHOOK_PROVIDER_URL"),
        ("webhook", {"WEBHOOK_PROVIDER_URL": "https://n8n.example/hook"}, "WEBHOOK_PROVIDER_SECRET"),
    ],
)
def test_an_enabled_provider_with_a_missing_setting_stops_the_start(provider, env, missing):
    with pytest.raises(SettingsError, match=missing):
        load_settings({**MINIMAL, "WHATSAPP_PROVIDER": provider, **env})


def test_a_disabled_provider_needs_no_settings():
    assert "evolution" not in load_settings(MINIMAL).provider_settings


def test_the_lease_is_short_and_need_not_outlast_a_provider_call():
    settings = load_settings({**MINIMAL, "PROVIDER_READ_TIMEOUT": "30"})
    assert settings.send_lease_seconds == 6 and settings.reconcile_interval_seconds == 2
    with pytest.raises(SettingsError, match="SEND_LEASE_SECONDS"):
        load_settings({**MINIMAL, "SEND_LEASE_SECONDS": "1"})


def test_waits_that_a_lease_cannot_cover_are_refused():
    evolution = {
        "WHATSAPP_PROVIDER": "evolution",
        "EVOLUTION_API_URL": "http://127.0.0.1:9",
        "EVOLUTION_API_KEY": "k",
        "EVOLUTION_INSTANCE": "loja-1",
    }
    with pytest.raises(SettingsError, match="EVOLUTION_TYPING_DELAY_MS"):
        load_settings({**MINIMAL, **evolution, "EVOLUTION_TYPING_DELAY_MS": "5000", "PROVIDER_READ_TIMEOUT": "5"})
    assert (
        load_settings({**MINIMAL, **evolution, "EVOLUTION_TYPING_DELAY_MS": "3000"})
        .provider_settings["evolution"]
        .typing_delay_ms
        == 3000
    )
    with pytest.raises(SettingsError, match="CALLBACK_TIMEOUT"):
        load_settings({**MINIMAL, "CALLBACK_TIMEOUT": "45"})


def test_pacing_defaults_per_provider():
    limits = load_settings({**MINIMAL, "WORKER_API_CALL_DELAY": "2000", "SENDER_RATE_MOCK": "10"}).sender_limits
    assert limits["meta"] == (80.0, 80, 0.0) and limits["twilio"] == (10.0, 10, 0.0)
    assert limits["evolution"] == (0.5, 1, 0.5)  # one message per WORKER_API_CALL_DELAY, no burst, never regular
    assert limits["mock"] == (10.0, 1, 0.0)
    with pytest.raises(SettingsError, match="SENDER_BURST_META"):
        load_settings({**MINIMAL, "SENDER_BURST_META": "0"})


def test_send_window_is_checked_at_start():
    assert load_settings(MINIMAL).send_window is None
    assert load_settings({**MINIMAL, "SEND_WINDOW": "08:00-20:00"}).send_window.zone.key == "America/Sao_Paulo"
    for env in ({"SEND_WINDOW": "8h-20h"}, {"SEND_WINDOW": "08:00-20:00", "SEND_TIMEZONE": "Mars/Base"}):
        with pytest.raises(SettingsError, match="SEND_WINDOW"):
            load_settings({**MINIMAL, **env})


@pytest.mark.parametrize(("value", "events"), [(None, True), ("on", True), ("off", False)])
def test_task_events_reach_celery_and_flower(value, events):
    """TASK_EVENTS=off must hold in the workers and in Flower, which would otherwise turn the events on again."""
    env = {**os.environ, **MINIMAL, "APP_ENV": "development"}
    if value:
        env["TASK_EVENTS"] = value
    read = "import celeryconfig, flowerconfig; print(celeryconfig.worker_send_task_events, "
    read += "celeryconfig.task_send_sent_event, flowerconfig.enable_events)"
    result = subprocess.run([sys.executable, "-c", read], env=env, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.stdout.split() == [str(events)] * 3, result.stderr


def test_task_events_take_on_or_off_only():
    with pytest.raises(SettingsError, match="TASK_EVENTS"):
        load_settings({**MINIMAL, "TASK_EVENTS": "maybe"})
