"""Status callbacks to the caller: signed POSTs from the real `callbacks` worker of the Procfile to a real
HTTP receiver, in order, exactly once, retried while the receiver is down, dead after the retry budget."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from dispatcher import signatures
from tests.conftest import ROOT, auth, operator, wait_for
from tests.fakes.receiver import SECRET, FakeReceiver
from tests.test_metrics import sample

PHONE = "+5564999998888"


def callback_env(**extra: str) -> dict[str, str]:
    return {
        "WEBHOOK_SECRET": SECRET,
        "CALLBACK_URL_ALLOWLIST": "127.0.0.1",
        "CALLBACK_BACKOFF_BASE": "0.1",
        "CALLBACK_BACKOFF_MAX": "0.5",
        **extra,
    }


def send(client, external_id: str, **extra) -> str:
    body = {"recipient_phone": PHONE, "message_body": "Olá", "external_id": external_id, **extra}
    answer = client.post("/v1/messages/send", json=body, headers=auth())
    assert answer.status_code == 200, answer.json
    return answer.json["message_id"]


def test_a_sent_message_is_reported_signed_to_its_callback_url(
    make_app, start_worker, start_callbacks_worker, receiver
):
    env = callback_env()
    client = make_app(**env)
    start_worker(**env)
    start_callbacks_worker(**env)
    message_id = send(client, "campaign_1_contact_1", callback_url=receiver.hook_url)

    wait_for(lambda: receiver.events(), 20, what="the message.sent callback")
    accepted = receiver.accepted[0]
    assert accepted.event == {
        "event_id": f"{message_id}.1",
        "type": "message.sent",
        "message_id": message_id,
        "external_id": "campaign_1_contact_1",
        "batch_id": None,
        "status": "sent",
        "at": accepted.event["at"],
        "error": None,
        "provider": "mock",
        "sender": None,
        "pool": None,
    }
    assert accepted.headers[signatures.SIGNATURE_HEADER].startswith("sha256=")
    assert accepted.headers["X-Dispatcher-Event-Id"] == f"{message_id}.1"
    assert receiver.refused_signatures == 0


def test_status_webhook_url_is_the_default_and_a_wrong_secret_is_refused_by_the_receiver(
    make_app, start_worker, start_callbacks_worker
):
    receiver = FakeReceiver(secret="another-secret-entirely").start()
    try:
        env = callback_env(STATUS_WEBHOOK_URL=receiver.hook_url, CALLBACK_RETRY_FOR="1")
        client = make_app(**env)
        start_worker(**env)
        start_callbacks_worker(**env)
        send(client, "campaign_1_contact_2")
        wait_for(lambda: receiver.refused_signatures >= 1, 20, what="the receiver to check our signature")
        assert receiver.events() == []
    finally:
        receiver.stop()


def test_a_receiver_down_for_a_while_gets_every_event_once_in_order(
    make_app, start_worker, start_callbacks_worker, receiver
):
    env = callback_env()
    client = make_app(**env)
    receiver.down = True
    start_worker(**env)
    start_callbacks_worker(**env)
    ids = [send(client, f"campaign_2_contact_{n}", callback_url=receiver.hook_url) for n in range(20)]
    wait_for(lambda: len(receiver.received) >= 40, 20, what="retries while the receiver is down")
    receiver.down = False
    wait_for(lambda: len(receiver.events()) == 20, 30, what="every event once the receiver is back")
    assert sorted(e["message_id"] for e in receiver.events()) == sorted(ids)
    assert len({e["event_id"] for e in receiver.events()}) == 20


def test_a_batch_reports_each_message_and_completes_once(make_app, start_worker, start_callbacks_worker, receiver):
    env = callback_env()
    client = make_app(**env)
    start_worker(**env)
    start_callbacks_worker(**env)
    rows = [{"recipient_phone": PHONE, "message_body": "Oi", "external_id": f"c3_{n}"} for n in range(30)]
    body = {"messages": rows, "callback_url": receiver.hook_url}
    answer = client.post("/v1/messages/bulk", json=body, headers=auth())
    assert answer.status_code in (200, 202), answer.json
    batch_id = answer.json["batch_id"]
    wait_for(lambda: receiver.events("batch.completed"), 30, what="batch.completed")
    wait_for(lambda: len(receiver.events("message.sent")) == 30, 30, what="every message.sent")
    (completed,) = receiver.events("batch.completed")
    assert completed["batch_id"] == batch_id
    assert completed["state"] == "completed"
    assert completed["total"] == 30
    assert completed["counts"]["sent"] == 30
    assert {e["batch_id"] for e in receiver.events("message.sent")} == {batch_id}


def dying_delivery(make_app, start_worker, start_callbacks_worker, receiver, external_id: str):
    """A message sent while its receiver is down, with a retry budget of a second: its `message.sent` delivery
    dies. Returns the API's test client and the message id."""
    env = callback_env(CALLBACK_RETRY_FOR="1")
    client = make_app(**env)
    receiver.down = True
    start_worker(**env)
    start_callbacks_worker(**env)
    return client, send(client, external_id, callback_url=receiver.hook_url)


def test_a_dead_delivery_is_listed_and_resent_on_request(make_app, start_worker, start_callbacks_worker, receiver):
    client, message_id = dying_delivery(
        make_app, start_worker, start_callbacks_worker, receiver, "campaign_4_contact_1"
    )

    def dead():
        page = client.get("/v1/webhooks/deliveries?state=dead", headers=auth()).json
        return page["deliveries"]

    (delivery,) = wait_for(dead, 20, what="the delivery to die")
    assert delivery["delivery_id"] == f"{message_id}.1"
    assert delivery["attempts"] >= 2
    assert delivery["last_error"] == "HTTP 503"
    assert delivery["event"]["type"] == "message.sent"
    assert client.get("/v1/queue/status", headers=operator()).json["callbacks_dead"] == 1

    receiver.down = False
    answer = client.post(f"/v1/webhooks/deliveries/{delivery['delivery_id']}/retry", headers=auth())
    assert answer.status_code == 202
    wait_for(lambda: receiver.events(), 20, what="the re-sent delivery")
    assert [e["event_id"] for e in receiver.events()] == [f"{message_id}.1"]
    assert dead() == []
    assert client.get("/v1/queue/status", headers=operator()).json["callbacks_dead"] == 0
    scrape = client.get("/metrics", headers=operator()).get_data(as_text=True)
    assert sample(scrape, "dispatcher_callback_deliveries_total", outcome="dead") == 1
    assert sample(scrape, "dispatcher_callback_deliveries_total", outcome="delivered") == 1
    assert client.post("/v1/webhooks/deliveries/nope/retry", headers=auth()).status_code == 404


def test_a_callback_host_that_does_not_resolve_is_retried_not_dead_at_once(
    make_app, start_worker, start_callbacks_worker
):
    env = callback_env(CALLBACK_RETRY_FOR="2")
    client = make_app(**env)
    start_worker(**env)
    start_callbacks_worker(**env)
    send(client, "campaign_5_contact_1", callback_url="http://hooks.invalid/h")  # .invalid never resolves

    def dead():
        return client.get("/v1/webhooks/deliveries?state=dead", headers=auth()).json["deliveries"]

    (delivery,) = wait_for(dead, 20, what="the delivery to die once its retry budget is spent")
    assert delivery["attempts"] >= 2, delivery["last_error"]
    assert "does not resolve" in delivery["last_error"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:9/hook", "private, loopback or link-local"),
        ("http://10.0.0.8/hook", "private, loopback or link-local"),
        ("http://169.254.169.254/latest/meta-data", "private, loopback or link-local"),
        ("http://[::1]/hook", "private, loopback or link-local"),
        ("http://localhost:3000/hook", "localhost"),
        ("ftp://example.com/hook", "http(s)"),
    ],
)
def test_callback_urls_to_private_places_are_refused(make_app, url, expected):
    client = make_app(WEBHOOK_SECRET=SECRET)
    answer = client.post(
        "/v1/messages/send",
        json={"recipient_phone": PHONE, "message_body": "x", "external_id": "e1", "callback_url": url},
        headers=auth(),
    )
    assert answer.status_code == 400
    assert answer.json["field"] == "callback_url"
    assert expected in answer.json["error"]


def test_an_allowlisted_private_range_and_a_public_host_are_accepted(make_app):
    client = make_app(WEBHOOK_SECRET=SECRET, CALLBACK_URL_ALLOWLIST="10.0.0.0/8")
    for n, url in enumerate(["http://10.1.2.3/hook", "https://reach-town.example.com/hook"]):
        body = {"recipient_phone": PHONE, "message_body": "x", "external_id": f"e{n}", "callback_url": url}
        assert client.post("/v1/messages/send", json=body, headers=auth()).status_code == 200


def test_a_callback_url_without_a_webhook_secret_is_refused(make_app):
    client = make_app()
    body = {"recipient_phone": PHONE, "message_body": "x", "external_id": "e1", "callback_url": "https://x.example/h"}
    answer = client.post("/v1/messages/send", json=body, headers=auth())
    assert answer.status_code == 400
    assert answer.json["code"] == "callbacks_not_configured"
    assert answer.json["field"] == "callback_url"


def test_our_signature_verifies_and_refuses_stale_or_altered_requests():
    body = '{"event_id":"msg-1.1","text":"Olá"}'.encode()
    headers = signatures.headers(SECRET, body, now=1_700_000_000)
    timestamp, signature = headers[signatures.TIMESTAMP_HEADER], headers[signatures.SIGNATURE_HEADER]
    assert signatures.verify(SECRET, body, timestamp, signature, now=1_700_000_100)
    assert not signatures.verify(SECRET, body + b" ", timestamp, signature, now=1_700_000_100)
    assert not signatures.verify(SECRET, body, timestamp, signature, now=1_700_000_000 + 301)
    assert not signatures.verify("other-secret-16chars", body, timestamp, signature, now=1_700_000_100)
    assert not signatures.verify(SECRET, body, "not-a-number", signature)
    assert not signatures.verify(SECRET, body, timestamp, "sha256=é" + signature[8:], now=1_700_000_100)


def _docs_snippet(language: str) -> str:
    """docs/callbacks.md's signature-checking snippet in `language`, as a reach-town developer would copy it."""
    page = (ROOT / "docs" / "callbacks.md").read_text()
    section = page.split("## Verifying our signature", 1)[1].split("\n# ", 1)[0]
    return section.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def test_the_docs_python_snippet_verifies_our_signature():
    namespace: dict = {}
    exec(_docs_snippet("python"), namespace)
    body = '{"type":"message.read","text":"Olá 🙂"}'.encode()
    headers = signatures.headers(SECRET, body)
    timestamp, signature = headers[signatures.TIMESTAMP_HEADER], headers[signatures.SIGNATURE_HEADER]
    assert namespace["verify_dispatcher"](body, timestamp, signature, SECRET)
    assert not namespace["verify_dispatcher"](body[:-1], timestamp, signature, SECRET)
    # A header that is not ASCII (a forgery, or a proxy's mangling) is refused, never an exception.
    for forged in ("sha256=é" + signature[8:], "sha256=" + "\udcff" * 64, "🔑"):
        assert not namespace["verify_dispatcher"](body, timestamp, forged, SECRET)


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_the_docs_typescript_snippet_verifies_our_signature(tmp_path):
    # Node runs the snippet once its type annotations are stripped (it is otherwise plain JavaScript).
    code = re.sub(r": (Buffer|string|boolean)", "", _docs_snippet("ts")).replace("export ", "")
    body = '{"type":"message.read","text":"Olá 🙂"}'.encode()
    headers = signatures.headers(SECRET, body)
    script = tmp_path / "verify.mjs"
    script.write_text(
        code
        + f"\nconst body = Buffer.from({json.dumps(body.decode())}, 'utf8');\n"
        + f"const ok = verifyDispatcher(body, {json.dumps(headers[signatures.TIMESTAMP_HEADER])}, "
        + f"{json.dumps(headers[signatures.SIGNATURE_HEADER])}, {json.dumps(SECRET)});\n"
        + f"const forged = verifyDispatcher(Buffer.from('x'), {json.dumps(headers[signatures.TIMESTAMP_HEADER])}, "
        + f"{json.dumps(headers[signatures.SIGNATURE_HEADER])}, {json.dumps(SECRET)});\n"
        + "console.log(JSON.stringify([ok, forged]));\n"
    )
    result = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == "[true,false]", result.stderr
