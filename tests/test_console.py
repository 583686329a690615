"""The operators' console (dispatcher/api/console.py): who gets in, what a page shows, what its buttons do.

Through the real app and a real Redis, as a browser would use it: a form POST to sign in, the session cookie,
the pages, and the buttons' form POSTs with their CSRF token."""

from __future__ import annotations

import re

import pytest

from providers.base import mask_phone
from tests.conftest import ADMIN_API_KEY, API_KEY, auth, operator, wait_for
from tests.test_batches import batch, start_batch  # these tests run no worker: nothing sends
from tests.test_callbacks import dying_delivery
from tests.test_failed_messages import fail, send

PHONE = re.compile(r"\+?55649\d{4,}")


def signed_in(client, key: str = ADMIN_API_KEY):
    answer = client.post("/console/login", data={"key": key})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/console"), answer.text
    return answer


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def press(client, batch_id: str, action: str, csrf: str):
    return client.post(f"/console/batches/{batch_id}/{action}", data={"csrf": csrf})


def test_the_console_asks_for_an_operator_key(client):
    page = client.get("/console")
    assert page.status_code == 401 and 'name="key"' in page.text
    assert client.post("/console/login", data={"key": "not-a-key"}).status_code == 401
    tenant = client.post("/console/login", data={"key": API_KEY})
    assert tenant.status_code == 403 and "operator key" in tenant.text
    assert client.get("/console").status_code == 401  # a refused login opened nothing


def test_the_session_cookie_is_signed_httponly_strict_and_holds_no_key(client):
    cookie = signed_in(client).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert ADMIN_API_KEY not in cookie
    assert client.get("/console").status_code == 200


def test_a_forged_or_stale_session_opens_nothing(client, make_app):
    signed_in(client)
    value = client.get_cookie("dispatcher_console", path="/console").value
    other = make_app(ADMIN_API_KEY="another-operator-key")  # the operators' keys changed: every session ends
    other.set_cookie("dispatcher_console", value, path="/console")
    assert other.get_cookie("dispatcher_console", path="/console") is not None
    assert other.get("/console").status_code == 401
    forged = make_app()
    forged.set_cookie("dispatcher_console", value[:-2] + ("AA" if not value.endswith("AA") else "BB"), path="/console")
    assert forged.get("/console").status_code == 401


def test_a_campaign_shows_its_progress_and_no_number_or_text(client):
    batch_id = start_batch(client, 5)
    signed_in(client)
    page = client.get("/console")
    assert page.status_code == 200
    row = page.text.split(f'<tr id="{batch_id}">', 1)[1].split("</tr>", 1)[0]
    assert "of 5" in row and 'progress max="1" value="0.0"' in row
    assert ">Pause<" in row and ">Cancel<" in row and ">Resume<" not in row
    assert not PHONE.search(page.text) and "Olá" not in page.text
    assert (
        page.headers["X-Frame-Options"] == "DENY"
        and "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    )


def test_the_buttons_pause_resume_and_cancel_through_the_api_services(client):
    batch_id = start_batch(client, 5)
    signed_in(client)
    csrf = csrf_of(client.get("/console").text)

    assert press(client, batch_id, "pause", csrf).status_code == 303
    assert batch(client, batch_id)["state"] == "paused"
    page = client.get("/console").text
    assert "pause done" in page and ">Resume<" in page

    assert press(client, batch_id, "pause", csrf).status_code == 303
    assert "cannot pause a batch that is paused" in client.get("/console").text

    press(client, batch_id, "resume", csrf)
    assert batch(client, batch_id)["state"] == "running"
    press(client, batch_id, "cancel", csrf)
    assert batch(client, batch_id)["state"] == "canceled"
    assert batch(client, batch_id)["counts"] == {"canceled": 5}


@pytest.mark.parametrize("csrf", ["", "forged-token"])
def test_a_button_without_the_sessions_token_does_nothing(client, csrf):
    batch_id = start_batch(client, 3)
    signed_in(client)
    assert press(client, batch_id, "pause", csrf).status_code == 400
    assert batch(client, batch_id)["state"] == "running"


def test_a_button_without_a_session_does_nothing(client):
    batch_id = start_batch(client, 3)
    assert press(client, batch_id, "cancel", "any").status_code == 401
    assert client.get(f"/v1/batches/{batch_id}", headers=auth()).json["state"] == "running"


def test_sign_out_ends_the_session(client):
    signed_in(client)
    csrf = csrf_of(client.get("/console").text)
    assert client.post("/console/logout", data={"csrf": csrf}).status_code == 303
    assert client.get("/console").status_code == 401


def test_the_list_drops_batches_whose_keys_expired(client, redis_client):
    kept, gone = start_batch(client, 1, "kept"), start_batch(client, 1, "gone")
    redis_client.delete(f"dispatch:batch:{gone}")
    signed_in(client)
    page = client.get("/console").text
    assert kept in page and gone not in page
    assert redis_client.zscore("dispatch:batches", gone) is None and redis_client.zscore("dispatch:batches", kept)


def test_the_senders_page_pauses_and_resumes_a_sender(client):
    signed_in(client)
    client.put("/v1/senders/mock/loja-1", json={"rate_per_second": 5}, headers=operator())
    page = client.get("/console/senders")
    assert page.status_code == 200 and 'id="sender-mock-loja-1"' in page.text
    csrf = csrf_of(page.text)
    back = {"csrf": csrf, "back": "/console/senders"}
    answer = client.post("/console/senders/mock/loja-1/pause", data=back)
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/console/senders")
    sender = client.get("/v1/senders/mock/loja-1", headers=operator()).json
    assert sender["state"] == "paused" and sender["paused_reason"] == "paused by an operator"
    row = client.get("/console/senders").text.split('id="sender-mock-loja-1"', 1)[1].split("</tr>", 1)[0]
    assert "paused by an operator" in row and ">Resume<" in row
    client.post("/console/senders/mock/loja-1/resume", data=back)
    assert client.get("/v1/senders/mock/loja-1", headers=operator()).json["state"] == "active"


def test_a_button_goes_back_only_to_a_console_page(client):
    signed_in(client)
    csrf = csrf_of(client.get("/console").text)
    for elsewhere in ("https://evil.example/", "//evil.example/console", "/v1/messages"):
        answer = client.post("/console/senders/mock/loja-1/pause", data={"csrf": csrf, "back": elsewhere})
        assert answer.headers["Location"].endswith("/console"), elsewhere


def test_the_failed_page_retries_a_failed_message_with_its_number_masked(client):
    message_id = send(client, "console-failed-1")
    fail(client, message_id)
    signed_in(client)
    page = client.get("/console/failed")
    row = page.text.split(f'<tr id="{message_id}">', 1)[1].split("</tr>", 1)[0]
    assert "63016" in row and mask_phone("+5564999998888") in row and "+5564999998888" not in page.text
    answer = client.post(f"/console/messages/{message_id}/retry", data={"csrf": csrf_of(page.text)})
    assert answer.status_code == 303
    assert client.get(f"/v1/messages/{message_id}", headers=auth()).json["status"] == "queued"
    after = client.get("/console/failed").text  # the flash says so once, on the next page
    assert f"{message_id}: queued again." in after and f'<tr id="{message_id}">' not in after


def test_the_opt_outs_page_lists_an_accounts_numbers_masked(client):
    assert client.post("/v1/opt-outs", json={"recipient_phone": "+5564999997777"}, headers=auth()).status_code < 300
    signed_in(client)
    accounts = client.get("/console/opt-outs").text
    account = re.search(r'opt-outs\?account=([^"]+)"', accounts).group(1)
    page = client.get(f"/console/opt-outs?account={account}").text
    assert mask_phone("+5564999997777") in page and "+5564999997777" not in page and "<td>api</td>" in page


def test_the_dead_callbacks_page_resends_a_dead_delivery(make_app, start_worker, start_callbacks_worker, receiver):
    client, message_id = dying_delivery(make_app, start_worker, start_callbacks_worker, receiver, "console-dead-1")
    signed_in(client)
    page = wait_for(lambda: (p := client.get("/console/callbacks").text) and f"{message_id}.1" in p and p, 20)
    row = page.split(f'<tr id="{message_id}.1">', 1)[1].split("</tr>", 1)[0]
    assert "message.sent" in row and "HTTP 503" in row and receiver.hook_url not in page
    receiver.down = False
    client.post(f"/console/callbacks/{message_id}.1/resend", data={"csrf": csrf_of(page)})
    wait_for(lambda: receiver.events(), 20, what="the re-sent delivery")
    assert [e["event_id"] for e in receiver.events()] == [f"{message_id}.1"]
    assert f'<tr id="{message_id}.1">' not in client.get("/console/callbacks").text


def test_every_page_and_button_needs_the_session(client):
    for path in ("/console", "/console/senders", "/console/failed", "/console/callbacks", "/console/opt-outs"):
        assert client.get(path).status_code == 401, path
    for path in ("/console/senders/mock/x/pause", "/console/messages/m/retry", "/console/callbacks/d/resend"):
        assert client.post(path, data={"csrf": "x"}).status_code == 401, path
