"""A provider's status webhook that arrives before our own call has its answer is kept, not dropped.

Meta (like Twilio and Evolution) may post `delivered`, or `failed` with 131026, as soon as it has the
message, while the worker's call is still waiting for the answer that carries the message's id.
Here the fake Meta posts the signed webhook to the real web process and only then answers the real
worker: the report always comes first.
"""

from __future__ import annotations

import pytest
import requests

from tests.conftest import API_KEY, auth, wait_for
from tests.fakes import inbound, meta

APP_SECRET = "meta-app-secret-for-tests"


@pytest.mark.parametrize(
    ("reported", "error_code", "final"), [("delivered", None, "delivered"), ("failed", 131026, "failed")]
)
def test_a_status_webhook_posted_before_the_send_is_answered_is_applied(
    fake_meta, start_web, start_worker, reported, error_code, final
):
    fake = fake_meta
    env = {**meta.CASE.env(fake), "META_APP_SECRET": APP_SECRET, "API_KEY": API_KEY}
    url = start_web(**env)

    def report_first(wamid: str, to: str) -> None:
        payload = inbound.meta_status(wamid, reported, 1_710_930_461, error_code=error_code, recipient=to.lstrip("+"))
        headers, raw = inbound.meta_signed(APP_SECRET, payload)
        answer = requests.post(f"{url}/v1/webhooks/meta", data=raw, headers=headers, timeout=5)
        assert answer.status_code == 200, answer.text

    fake.on_accept = report_first
    start_worker(**env)
    body = {"recipient_phone": "+5511999998888", "message_body": "Olá", "external_id": f"early-{reported}"}
    message_id = requests.post(f"{url}/v1/messages/send", json=body, headers=auth(), timeout=5).json()["message_id"]

    def final_record():
        record = requests.get(f"{url}/v1/messages/{message_id}", headers=auth(), timeout=5).json()
        return record if record["status"] == final else None

    record = wait_for(final_record, 20, what=f"the message to end {final}")
    assert [entry["status"] for entry in record["history"]] == ["queued", "sending", "sent", final]
    if error_code:
        assert record["last_error"]["code"] == str(error_code)
    assert len(fake.received) == 1
