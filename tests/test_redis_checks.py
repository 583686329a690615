"""The start-up warning when Redis may evict queued work (seed 000's advice)."""

import logging

from dispatcher.redis_checks import warn_if_evicting


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
