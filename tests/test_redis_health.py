"""The start-up warnings: Redis may evict queued work (the legacy system's advice), may keep records three times
their size, or this host's clock is off."""

import logging
import time

import redis

from dispatcher.redis_health import RECORD_VALUE_BYTES, warn_if_clock_skewed, warn_if_evicting, warn_if_records_bloat
from scripts.embedded_redis import EmbeddedRedis, free_port


def test_warns_unless_noeviction(redis_client, caplog):
    previous = redis_client.config_get("maxmemory-policy")["maxmemory-policy"]
    try:
        redis_client.config_set("maxmemory-policy", "allkeys-lru")
        with caplog.at_level(logging.WARNING):
            warn_if_evicting(redis_client)
        assert "allkeys-lru" in caplog.text and "noeviction" in caplog.text
        caplog.clear()
        redis_client.config_set("maxmemory-policy", "noeviction")
        with caplog.at_level(logging.WARNING):
            warn_if_evicting(redis_client)
        assert caplog.text == ""
    finally:
        redis_client.config_set("maxmemory-policy", previous)


def test_warns_when_a_long_callback_url_would_bloat_every_record(redis_client, caplog):
    previous = redis_client.config_get("hash-max-ziplist-value")["hash-max-ziplist-value"]
    try:
        redis_client.config_set("hash-max-ziplist-value", 64)  # Redis's default
        with caplog.at_level(logging.WARNING):
            warn_if_records_bloat(redis_client)
        assert "hash-max-listpack-value is 64" in caplog.text and str(RECORD_VALUE_BYTES) in caplog.text
        caplog.clear()
        redis_client.config_set("hash-max-ziplist-value", RECORD_VALUE_BYTES)
        with caplog.at_level(logging.WARNING):
            warn_if_records_bloat(redis_client)
        assert caplog.text == ""
    finally:
        redis_client.config_set("hash-max-ziplist-value", previous)


def test_the_embedded_redis_keeps_a_record_with_long_values_compact(tmp_path, caplog):
    """`make run`'s Redis and the tests': a reach-town external_id (a campaign's and a contact's UUIDs) and an
    edge function's callback URL, each over Redis's default 64 bytes, leave the record a listpack."""
    server = EmbeddedRedis(tmp_path / "redis", appendonly=False).start()
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        with caplog.at_level(logging.WARNING):
            warn_if_records_bloat(client)
        assert caplog.text == ""
        external_id = "campaign_0b7f3c1e-5a52-4c1e-9d53-2f1c8f9b6a11_contact_7d9e1f20-3b4c-4d5e-8f60-718293a4b5c6"
        callback_url = "https://abcdefghijklmnopqrst.supabase.co/functions/v1/whatsapp-status?campaign=42"
        client.hset("record", mapping={"external_id": external_id, "callback_url": callback_url, "status": "sent"})
        assert client.object("encoding", "record") in ("ziplist", "listpack")
    finally:
        server.stop()


def test_a_clock_far_from_redis_is_reported(redis_client, caplog):
    with caplog.at_level(logging.WARNING):
        assert abs(warn_if_clock_skewed(redis_client)) < 1
        assert "clock" not in caplog.text
        assert warn_if_clock_skewed(redis_client, now=time.time() - 5) < -4
    assert "5.0 s behind Redis's" in caplog.text


def test_the_clock_check_lets_a_worker_start_while_redis_is_down():
    down = redis.Redis(port=free_port(), socket_connect_timeout=0.2)
    assert warn_if_clock_skewed(down) == 0.0
