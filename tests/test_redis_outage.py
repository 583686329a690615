"""Redis unreachable: the API answers 503 with a clear error, writes nothing, and recovers by itself."""

import pytest

from scripts.embedded_redis import EmbeddedRedis
from tests.conftest import auth


@pytest.fixture
def own_redis(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", appendonly=True).start()
    yield server
    server.stop()


def send(client, external_id):
    return client.post(
        "/v1/messages/send",
        json={"recipient_phone": "+5564999998888", "message_body": "hi", "external_id": external_id},
        headers=auth(),
    )


def test_redis_down_gives_503_and_the_service_recovers(make_app, own_redis):
    client = make_app(REDIS_URL=own_redis.url)
    assert send(client, "before").status_code == 200

    own_redis.stop()
    down = send(client, "during")
    assert down.status_code == 503
    assert down.json["code"] == "redis_unavailable"
    assert "Redis" in down.json["error"]
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json["redis"] == "unreachable"
    assert client.get("/health").status_code == 200  # liveness does not depend on Redis

    own_redis.start()
    assert client.get("/health/ready").status_code == 200
    assert send(client, "after").status_code == 200
    assert client.get("/v1/messages", query_string={"external_id": "during"}, headers=auth()).status_code == 404
    assert client.get("/v1/messages", query_string={"external_id": "before"}, headers=auth()).status_code == 200
