"""Contacts' rules end to end (dispatcher/contacts.py): opt-outs honoured at every door, the 24-hour window known
before sending, daily caps per contact, and a contact's view. Replies come in as the providers send them (signed
Meta and Twilio requests, Evolution with its secret), through the real app; real workers send to fake providers."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.contacts import normalized
from tests.conftest import OTHER_API_KEY, auth, operator, wait_for
from tests.fakes import inbound, meta
from tests.fakes.receiver import SECRET

CONTACT = "+5511999998888"  # inbound.CONTACT_DIGITS
OTHER_CONTACT = "+5511988887777"
APP_SECRET = "meta-app-secret-for-tests"
TEMPLATE = {"name": "retomar_contato", "language": "pt_BR"}


@pytest.fixture
def meta_env(fake_meta, receiver):
    """Meta with its webhook configured (so the 24-hour window is enforced) and callbacks to `receiver`."""
    return {
        **meta.CASE.env(fake_meta),
        "META_APP_SECRET": APP_SECRET,
        "META_WEBHOOK_VERIFY_TOKEN": "verify-me",
        "WEBHOOK_SECRET": SECRET,
        "STATUS_WEBHOOK_URL": receiver.hook_url,
        "CALLBACK_URL_ALLOWLIST": "127.0.0.1",
    }


def post_meta(client, payload: dict):
    headers, raw = inbound.meta_signed(APP_SECRET, payload)
    answer = client.post("/v1/webhooks/meta", data=raw, headers=headers)
    assert answer.status_code == 200, answer.json
    return answer.json


def meta_reply(client, text: str, digits: str = inbound.CONTACT_DIGITS, at: float | None = None) -> dict:
    wamid = f"wamid.in-{time.monotonic_ns()}"
    return post_meta(client, inbound.meta_reply(wamid, digits, text, timestamp=int(at) if at else None))


def meta_preference(client, value: str, digits: str = inbound.CONTACT_DIGITS) -> dict:
    detail = f"User requested to {value} marketing messages"
    item = {"wa_id": digits, "detail": detail, "category": "marketing_messages", "value": value,
            "timestamp": int(time.time())}  # fmt: skip
    payload = inbound._meta_envelope({"contacts": [{"wa_id": digits}], "user_preferences": [item]})
    payload["entry"][0]["changes"][0]["field"] = "user_preferences"
    return post_meta(client, payload)


def send(client, external_id: str, phone: str = CONTACT, key: str | None = None, **extra):
    body = {"recipient_phone": phone, "message_body": "Olá!", "external_id": external_id, **extra}
    return client.post("/v1/messages/send", json=body, headers=auth(key) if key else auth())


def status(client, message_id: str) -> dict:
    return client.get(f"/v1/messages/{message_id}", headers=auth()).json


def sent_to(fake, phone: str) -> list[dict]:
    """What the fake provider was asked to send to `phone` (E.164 or digits)."""
    digits = phone.lstrip("+")
    return [r.json for r in fake.received if isinstance(r.json, dict) and r.json.get("to", "").lstrip("+") == digits]


def in_the_future(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


# ---- keywords --------------------------------------------------------------------------------------------


def test_a_reply_is_compared_trimmed_in_any_case_without_accents():
    assert normalized("  não quero   mais ") == "NAO QUERO MAIS"
    assert normalized("Sair") == normalized("SAIR") == "SAIR"
    assert normalized("Parar, por favor") == "PARAR, POR FAVOR"  # the whole text: this is not the keyword


# ---- opt-outs ----------------------------------------------------------------------------------------------


def test_an_opt_out_by_reply_is_honoured_at_every_door_and_an_opt_in_lifts_it(
    make_app, start_worker, start_callbacks_worker, meta_env, fake_meta, receiver
):
    client = make_app(**meta_env)
    start_callbacks_worker(**meta_env)
    start_worker(**meta_env)
    meta_reply(client, "Oi")  # the contact writes first: its window with our number is open
    first = send(client, "c1_first").json["message_id"]
    wait_for(lambda: status(client, first)["status"] == "sent", what="the first message sent")
    waiting = send(client, "c1_scheduled", send_at=in_the_future(3)).json["message_id"]
    assert status(client, waiting)["status"] == "scheduled"

    assert meta_reply(client, " parar ")["outcomes"] == {"queued": 1}

    refused = send(client, "c1_after")
    assert refused.status_code == 422
    assert refused.json == {"error": "Recipient has opted out", "code": "opted_out", "field": "recipient_phone"}
    rows = [
        {"recipient_phone": CONTACT, "external_id": "b1_0"},
        {"recipient_phone": OTHER_CONTACT, "external_id": "b1_1"},
    ]
    batch = {"messages": rows, "template": "Oi", "fallback_template": TEMPLATE}
    bulk = client.post("/v1/messages/bulk", json=batch, headers=auth()).json
    assert bulk["accepted"] == 1 and bulk["results"][0]["code"] == "opted_out"
    assert bulk["results"][0]["error"] == "Recipient has opted out"
    wait_for(lambda: status(client, waiting)["status"] == "canceled", timeout=20, what="the scheduled one canceled")
    assert status(client, waiting)["history"][-1]["reason"] == "opted_out"
    assert len(sent_to(fake_meta, inbound.CONTACT_DIGITS)) == 1  # the first message only
    opted = wait_for(lambda: receiver.events("contact.opted_out"), what="the opted_out event")
    assert opted[0]["recipient_phone"] == CONTACT and opted[0]["source"] == "reply" and opted[0]["keyword"] == "PARAR"

    meta_reply(client, "Voltar")
    wait_for(lambda: receiver.events("contact.opted_in"), what="the opted_in event")
    again = send(client, "c1_again")
    assert again.status_code == 200, again.json
    wait_for(lambda: len(sent_to(fake_meta, inbound.CONTACT_DIGITS)) == 2, what="the message after the opt-in")


def test_opt_outs_through_twilio_and_evolution_replies(make_app):
    env = {
        "WHATSAPP_PROVIDERS": "mock,twilio,evolution",
        "TWILIO_ACCOUNT_SID": inbound.TWILIO_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": "twilio-auth-token-for-tests",
        "TWILIO_WHATSAPP_FROM": inbound.TWILIO_FROM,
        "PUBLIC_BASE_URL": "https://dispatcher.example.com",
        "EVOLUTION_API_URL": "http://127.0.0.1:9",
        "EVOLUTION_API_KEY": "evolution-key",
        "EVOLUTION_INSTANCE": "campanha",
        "EVOLUTION_WEBHOOK_SECRET": "evolution-shared-secret",
    }
    client = make_app(**env)
    url = "https://dispatcher.example.com/v1/webhooks/twilio"
    headers, form = inbound.twilio_signed("twilio-auth-token-for-tests", url, inbound.twilio_reply(CONTACT, "STOP"))
    assert client.post("/v1/webhooks/twilio", data=form, headers=headers).status_code == 200
    assert send(client, "t1", provider="mock").json["code"] == "opted_out"  # every sender: the account's list

    reply = inbound.evolution_reply("campanha", OTHER_CONTACT.lstrip("+"), "Não quero mais")
    answer = client.post("/v1/webhooks/evolution", json=reply, headers={"X-Webhook-Secret": "evolution-shared-secret"})
    assert answer.status_code == 200
    assert send(client, "e1", phone=OTHER_CONTACT).status_code == 422
    forged = inbound.evolution_reply("campanha", "5511977776666", "SAIR")
    assert client.post("/v1/webhooks/evolution", json=forged, headers={"X-Webhook-Secret": "guess"}).status_code == 403
    assert send(client, "e2", phone="+5511977776666").status_code == 200
    bad = send(client, "e3", phone="+5511977776666", provider="evolution", fallback_template=TEMPLATE)
    assert bad.status_code == 400 and bad.json["field"] == "fallback_template"  # a bridge sends no templates


def test_a_reply_belongs_to_the_account_that_last_wrote_from_that_sender(make_app, start_worker, meta_env):
    env = {**meta_env, "SESSION_WINDOW": "off"}
    client = make_app(**env)
    start_worker(**env)
    mine = send(client, "mine").json["message_id"]
    wait_for(lambda: status(client, mine)["status"] == "sent", what="our message sent")
    meta_reply(client, "SAIR")
    assert send(client, "mine_2").status_code == 422
    assert send(client, "theirs", key=OTHER_API_KEY).status_code == 200  # the other account never wrote to it
    assert client.get(f"/v1/contacts/{CONTACT}", headers=auth(OTHER_API_KEY)).json["opted_out"] is False


def test_a_reply_nobody_can_attribute_opts_out_of_every_account(make_app, meta_env):
    client = make_app(**meta_env)
    meta_reply(client, "SAIR")
    assert send(client, "a", template=TEMPLATE).json["code"] == "opted_out"
    assert send(client, "b", key=OTHER_API_KEY, template=TEMPLATE).json["code"] == "opted_out"


def test_metas_marketing_preference_opts_out_and_back_in(make_app, start_callbacks_worker, meta_env, receiver):
    client = make_app(**meta_env)
    start_callbacks_worker(**meta_env)
    assert meta_preference(client, "stop")["outcomes"] == {"changed": 1}
    assert meta_preference(client, "stop")["outcomes"] == {"same": 1}  # Meta's retry changes nothing
    assert send(client, "p1", template=TEMPLATE).json["code"] == "opted_out"
    events = wait_for(lambda: receiver.events("contact.opted_out"), what="the event")
    assert events[0]["source"] == "provider" and events[0]["sender"] == inbound.META_PHONE_NUMBER_ID
    meta_preference(client, "resume")
    assert send(client, "p2", template=TEMPLATE).status_code == 200


def test_the_opt_out_api_lists_adds_and_removes_per_account(client):
    added = client.post("/v1/opt-outs", json={"recipient_phone": "5511999998888"}, headers=auth())
    assert added.status_code == 201 and added.json == {"recipient_phone": CONTACT, "opted_out": True, "changed": True}
    again = client.post("/v1/opt-outs", json={"recipient_phone": CONTACT}, headers=auth())
    assert again.status_code == 200 and again.json["changed"] is False
    for n in range(3):
        client.post("/v1/opt-outs", json={"recipient_phone": f"+55119700000{n:02d}"}, headers=auth())
    page = client.get("/v1/opt-outs?limit=2", headers=auth()).json
    assert len(page["opt_outs"]) == 2 and page["next_cursor"] == "2"
    rest = client.get("/v1/opt-outs?limit=2&cursor=2", headers=auth()).json
    assert len(rest["opt_outs"]) == 2 and rest["next_cursor"] is None
    listed = {entry["recipient_phone"]: entry for entry in page["opt_outs"] + rest["opt_outs"]}
    assert listed[CONTACT]["source"] == "api" and listed[CONTACT]["opted_out_at"].endswith("Z")
    assert client.get("/v1/opt-outs", headers=auth(OTHER_API_KEY)).json["opt_outs"] == []  # another account's
    assert send(client, "o1", key=OTHER_API_KEY).status_code == 200

    bad = client.post("/v1/opt-outs", json={"recipient_phone": "123"}, headers=auth())
    assert bad.status_code == 400 and bad.json["field"] == "recipient_phone"
    assert client.post("/v1/opt-outs", json={}, headers=auth()).json["field"] == "recipient_phone"
    assert client.post("/v1/opt-outs", json={"recipient_phone": CONTACT}, headers=operator()).status_code == 403

    removed = client.delete(f"/v1/opt-outs/{CONTACT}", headers=auth())
    assert removed.json == {"recipient_phone": CONTACT, "opted_out": False, "changed": True}
    assert send(client, "o2").status_code == 200
    view = client.get(f"/v1/contacts/{CONTACT}", headers=auth()).json
    assert [entry["state"] for entry in view["history"]] == ["opted_in", "opted_out"]


def test_the_legacy_routes_refuse_an_opted_out_number_in_their_shape(client):
    client.post("/v1/opt-outs", json={"recipient_phone": "+5511999999999"}, headers=auth())
    single = {"instanceName": "loja-1", "phone": "5511999999999", "type": "text", "message": "Olá!"}
    answer = client.post("/api/v1/dispatch/single", json=single, headers=auth())
    assert answer.status_code == 422
    assert answer.json == {"success": False, "message": "Recipient has opted out", "code": "opted_out",
                           "field": "recipient_phone"}  # fmt: skip
    bulk = {
        "instanceName": "loja-1",
        "type": "text",
        "message": "Oi",
        "recipients": [{"phone": "5511988887777"}, {"phone": "5511999999999"}],
    }
    answer = client.post("/api/v1/dispatch/bulk", json=bulk, headers=auth())
    assert answer.status_code == 422 and answer.json["field"] == "recipients/1/phone"
    assert client.application.extensions["dispatcher"].store.counts() == {}  # nothing written


def test_an_opt_out_reply_is_confirmed_once_through_the_same_sender(make_app, start_worker, meta_env, fake_meta):
    env = {**meta_env, "OPT_OUT_REPLY": "Pronto, você não receberá mais mensagens. Responda VOLTAR para voltar."}
    client = make_app(**env)
    start_worker(**env)
    payload = inbound.meta_reply("wamid.in-stop-1", inbound.CONTACT_DIGITS, "Stop promotions")  # Meta's button
    assert post_meta(client, payload)["outcomes"] == {"queued": 1}
    assert post_meta(client, payload)["outcomes"] == {"duplicate": 1}  # Meta's retry: no second confirmation
    wait_for(lambda: sent_to(fake_meta, inbound.CONTACT_DIGITS), what="the confirmation")
    store = client.application.extensions["dispatcher"].store
    wait_for(lambda: store.counts().get("sent") == 1, what="the confirmation sent")
    assert sum(store.counts().values()) == 1
    confirmations = sent_to(fake_meta, inbound.CONTACT_DIGITS)
    assert len(confirmations) == 1 and confirmations[0]["text"]["body"].startswith("Pronto")
    assert send(client, "after", template=TEMPLATE).json["code"] == "opted_out"


# ---- the 24-hour window ---------------------------------------------------------------------------------


def test_a_free_form_send_needs_the_contact_to_have_written_in_the_last_24_hours(
    make_app, start_worker, meta_env, fake_meta
):
    client = make_app(**meta_env)
    start_worker(**meta_env)
    closed = send(client, "w1")
    assert closed.status_code == 422 and closed.json["code"] == "outside_session_window"
    assert closed.json["field"] == "template"
    assert send(client, "w2", template=TEMPLATE).status_code == 200  # a template may always go

    meta_reply(client, "Oi, quero saber mais")
    opened = send(client, "w3")
    assert opened.status_code == 200, opened.json
    view = client.get(f"/v1/contacts/{CONTACT}", headers=auth()).json
    assert view["senders"][0]["window_open_until"] and view["senders"][0]["window_enforced"] is True

    fallback = send(client, "w4", phone=OTHER_CONTACT, fallback_template=TEMPLATE)  # never wrote: the template goes
    assert fallback.status_code == 200, fallback.json
    wait_for(lambda: sent_to(fake_meta, OTHER_CONTACT.lstrip("+")), what="the fallback template sent")
    assert sent_to(fake_meta, OTHER_CONTACT.lstrip("+"))[0]["type"] == "template"
    wait_for(lambda: sorted(m["type"] for m in sent_to(fake_meta, inbound.CONTACT_DIGITS)) == ["template", "text"],
             what="the template and the text to the first contact")  # fmt: skip


def test_a_window_that_closes_while_the_message_waits_is_checked_at_the_claim(
    make_app, start_worker, meta_env, fake_meta
):
    client = make_app(**meta_env)
    meta_reply(client, "Oi", at=time.time() - 86400 + 3)  # its window closes in 3 s
    meta_reply(client, "Oi", digits=OTHER_CONTACT.lstrip("+"), at=time.time() - 86400 + 3)
    plain = send(client, "late_1", send_at=in_the_future(5)).json["message_id"]
    with_fallback = send(client, "late_2", phone=OTHER_CONTACT, send_at=in_the_future(5), fallback_template=TEMPLATE)
    start_worker(**meta_env)
    wait_for(lambda: status(client, plain)["status"] == "failed", timeout=20, what="the late free-form failed")
    assert status(client, plain)["last_error"]["code"] == "outside_session_window"
    wait_for(lambda: status(client, with_fallback.json["message_id"])["status"] == "sent", what="the fallback sent")
    assert status(client, with_fallback.json["message_id"])["fallback_template_used"] is True
    assert status(client, plain)["fallback_template_used"] is False
    assert sent_to(fake_meta, inbound.CONTACT_DIGITS) == []  # never called for the failed one
    assert sent_to(fake_meta, OTHER_CONTACT.lstrip("+"))[0]["type"] == "template"


def test_a_senders_own_fallback_template_lets_free_form_through(make_app, start_worker, meta_env, fake_meta):
    client = make_app(**meta_env)
    path = f"/v1/senders/meta/{inbound.META_PHONE_NUMBER_ID}"
    assert (
        client.put(path, json={"fallback_template": TEMPLATE}, headers=operator()).json["fallback_template"] == TEMPLATE
    )
    start_worker(**meta_env)
    assert send(client, "s1").status_code == 200
    wait_for(lambda: sent_to(fake_meta, inbound.CONTACT_DIGITS), what="the sender's template sent")
    assert sent_to(fake_meta, inbound.CONTACT_DIGITS)[0]["template"]["name"] == TEMPLATE["name"]
    assert client.put(path, json={"fallback_template": None}, headers=operator()).json["fallback_template"] is None
    assert send(client, "s2").json["code"] == "outside_session_window"


def test_session_window_off_and_providers_that_do_not_enforce_it(make_app, meta_env):
    assert send(make_app(**meta_env, SESSION_WINDOW="off"), "x1").status_code == 200
    both = make_app(**meta_env, WHATSAPP_PROVIDERS="meta,mock")
    assert send(both, "x2", provider="mock").status_code == 200  # only Meta and Twilio are held to it


# ---- daily caps ---------------------------------------------------------------------------------------------


def test_the_third_message_to_one_contact_is_refused_with_a_cap_of_two(make_app):
    client = make_app(CONTACT_DAILY_CAP="2", CONTACT_DAILY_CAP_BY_ACCOUNT="")
    assert send(client, "cap_1").status_code == 200
    assert send(client, "cap_1").json["replayed"] is True  # a replay is no new message
    assert send(client, "cap_2").status_code == 200
    third = send(client, "cap_3")
    assert third.status_code == 422 and third.json["code"] == "contact_cap_reached"
    assert "2 messages" in third.json["error"] and third.json["field"] == "recipient_phone"
    rows = [
        {"recipient_phone": CONTACT, "external_id": "cap_b0"},
        {"recipient_phone": OTHER_CONTACT, "external_id": "cap_b1"},
    ]
    bulk = client.post("/v1/messages/bulk", json={"messages": rows, "template": "Oi"}, headers=auth()).json
    assert bulk["accepted"] == 1 and bulk["results"][0]["code"] == "contact_cap_reached"
    assert send(client, "cap_other", key=OTHER_API_KEY).status_code == 200  # another account's own count
    assert client.get(f"/v1/contacts/{CONTACT}", headers=auth()).json["messages_today"] == 2


def test_an_accounts_own_cap_overrides_the_default(make_app, base_env):
    from dispatcher.accounts import key_id
    from tests.conftest import API_KEY

    client = make_app(CONTACT_DAILY_CAP="5", CONTACT_DAILY_CAP_BY_ACCOUNT=f"{key_id(API_KEY)}:1")
    assert send(client, "own_1").status_code == 200
    assert send(client, "own_2").json["code"] == "contact_cap_reached"
    for n in range(5):
        assert send(client, f"other_{n}", key=OTHER_API_KEY).status_code == 200


def test_the_cap_is_counted_once_per_message_by_concurrent_requests(make_app, start_web):
    import concurrent.futures

    import requests

    url = start_web(CONTACT_DAILY_CAP="10")
    body = {"recipient_phone": CONTACT, "message_body": "Olá!"}

    def post(n: int) -> int:
        return requests.post(f"{url}/v1/messages/send", json={**body, "external_id": f"race_{n}"},
                             headers=auth(), timeout=10).status_code  # fmt: skip

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(post, range(40)))
    assert answers.count(200) == 10 and answers.count(422) == 30


# ---- a contact's view ---------------------------------------------------------------------------------------


def test_a_contacts_view_shows_its_rules_and_is_the_accounts_own(make_app, meta_env):
    client = make_app(**meta_env, CONTACT_DAILY_CAP="5")
    meta_reply(client, "Oi")
    send(client, "v1")
    client.post("/v1/opt-outs", json={"recipient_phone": CONTACT}, headers=auth())
    view = client.get("/v1/contacts/5511999998888", headers=auth()).json
    assert view["recipient_phone"] == CONTACT and view["opted_out"] is True
    assert view["history"][0]["source"] == "api" and view["messages_today"] == 1
    [sender] = view["senders"]
    assert sender["provider"] == "meta" and sender["sender"] == inbound.META_PHONE_NUMBER_ID
    assert sender["last_inbound_at"].endswith("Z") and sender["window_open_until"]
    other = client.get(f"/v1/contacts/{CONTACT}", headers=auth(OTHER_API_KEY)).json
    assert other["opted_out"] is False and other["history"] == [] and other["messages_today"] == 0
    assert client.get("/v1/contacts/abc", headers=auth()).status_code == 400
    assert client.get(f"/v1/contacts/{CONTACT}", headers=operator()).status_code == 403
    uncapped = make_app(**meta_env).get(f"/v1/contacts/{CONTACT}", headers=auth()).json
    assert uncapped["messages_today"] is None and uncapped["daily_cap"] is None  # nothing is counted without a cap
