"""The task message the API writes by hand has the shape Celery itself publishes."""

import base64
import json

from celery import Celery

from tasks.envelope import task_envelope


def test_envelope_matches_what_celery_publishes(redis_url, redis_client):
    reference_app = Celery("reference", broker=redis_url)
    reference_app.conf.task_default_queue = "shape-check"
    reference_app.send_task("dispatch.send_message", args=["msg-1"])
    published = json.loads(redis_client.lindex("shape-check", 0))
    ours = json.loads(task_envelope("dispatch.send_message", ["msg-1"], "shape-check"))

    assert ours.keys() == published.keys()
    assert ours["headers"].keys() == published["headers"].keys()
    assert ours["properties"].keys() == published["properties"].keys()
    assert ours["properties"]["delivery_info"] == published["properties"]["delivery_info"]
    for name in ("content-type", "content-encoding"):
        assert ours[name] == published[name]
    assert base64.b64decode(ours["body"]) == base64.b64decode(published["body"])
    assert ours["headers"]["task"] == "dispatch.send_message"
    assert ours["headers"]["argsrepr"] == "['msg-1']"
