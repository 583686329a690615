"""The start-up warnings: Redis may evict queued work (the legacy system's advice), or this host's clock is off."""

import logging
import time

import redis

from dispatcher.redis_health import warn_if_clock_skewed, warn_if_evicting
from scripts.embedded_redis import free_port


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


def test_a_clock_far_from_redis_is_reported(redis_client, caplog):
    with caplog.at_level(logging.WARNING):
        assert abs(warn_if_clock_skewed(redis_client)) < 1
        assert "clock" not in caplog.text
        assert warn_if_clock_skewed(redis_client, now=time.time() - 5) < -4
    assert "5.0 s behind Redis's" in caplog.text


def test_the_clock_check_lets_a_worker_start_while_redis_is_down():
    down = redis.Redis(port=free_port(), socket_connect_timeout=0.2)
    assert warn_if_clock_skewed(down) == 0.0
