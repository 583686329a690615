"""Provider errors that repeat the request never carry the recipient's number or the message's text.

The redaction itself on generated texts; each provider's fake echoing the request in its errors, as the
real ones do; and end to end, through the real API, a real worker and the real callbacks worker, the
worker's log, `GET /v1/messages/<id>`'s last_error and the `message.failed` callback a receiver gets.
"""

from __future__ import annotations

import json
import logging
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.provider_setup import build_provider
from dispatcher.settings import load_settings
from providers import ProviderError
from providers.base import Media, OutboundMessage, Template
from providers.redaction import LIMIT, SCAN, redact
from tests.conftest import auth, wait_for
from tests.fakes import evolution, meta, twilio
from tests.fakes.receiver import FakeReceiver
from tests.test_callbacks import callback_env

PHONE = "+5564999998888"
TEXT = "Olá Ana, sua consulta com a Dra. Beatriz é amanhã às 10h30 na Rua das Flores"


def leaks(seen: str, phone: str = PHONE, text: str = TEXT) -> list[str]:
    """The forms of `phone` and the pieces of `text` (every 12 characters of it) found in `seen`."""
    digits = phone[1:]
    forms = [digits, digits[2:], digits[-9:], f"{digits[-8:-4]}-{digits[-4:]}", digits[:4] + digits[5:]]
    pieces = [text[i : i + 12] for i in range(len(text) - 11)]
    return [form for form in forms + pieces if form in seen]


# ---- the redaction, on generated texts -------------------------------------------------------------

NUMBER_GROUP = re.compile(r"\d+(?:[\s\-.()]{1,2}\d+)*")
CODES = ["1", "7", "20", "44", "49", "55", "91", "351", "598", "971"]


@st.composite
def recipients(draw) -> str:
    code = draw(st.sampled_from(CODES))
    national = draw(st.text("0123456789", min_size=10 - len(code), max_size=15 - len(code)))
    return f"+{code}{national}"


@st.composite
def written_forms(draw, phone: str) -> str:
    """The recipient as a provider may write it back."""
    digits = phone[1:]
    national = digits[len(next(code for code in CODES if digits.startswith(code))) :]
    spaced = "".join(digit + draw(st.sampled_from(["", "", " ", "-", ".", " -", "- "])) for digit in digits)
    dropped = draw(st.integers(0, len(digits) - 1))
    return draw(
        st.sampled_from(
            [
                phone,
                digits,
                national,
                spaced.strip(" -."),
                f"{digits}@s.whatsapp.net",
                f"whatsapp:{phone}",
                digits[:dropped] + digits[dropped + 1 :],  # Baileys' JID drops a Brazilian mobile's ninth digit
                f"({digits[2:4]}) {digits[4:-4]}-{digits[-4:]}",
            ]
        )
    )


bodies = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="[]"), min_size=12, max_size=300)
noise = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="[]"), max_size=40)


@st.composite
def echoing_errors(draw):
    """An error text quoting the recipient and the body (whole, JSON-escaped, or in pieces) among noise."""
    phone, body = draw(recipients()), draw(bodies)
    start = draw(st.integers(0, len(body) - 12))
    quoted = [
        draw(written_forms(phone)),
        draw(written_forms(phone)),
        body,
        json.dumps(body)[1:-1],
        body[start : start + draw(st.integers(12, len(body) - start))],
    ]
    parts = []
    for piece in draw(st.permutations(quoted)):
        parts += [draw(noise), piece]
    return phone, body, "".join(parts)


def shares_a_run(digits: str, phone: str) -> bool:
    own = {phone[1:][i : i + 5] for i in range(len(phone) - 5)}
    return any(digits[i : i + 5] in own for i in range(len(digits) - 4))


@settings(max_examples=400, deadline=None)
@given(echoing_errors())
def test_no_run_of_the_recipients_digits_and_no_piece_of_the_body_survives(case):
    phone, body, text = case
    redacted = redact(text, phone, [body])
    for group in NUMBER_GROUP.finditer(redacted):
        digits = re.sub(r"\D", "", group.group())
        assert not shares_a_run(digits, phone), (group.group(), redacted)
        assert len(digits) < 8, (group.group(), redacted)
    for form in (body, json.dumps(body)[1:-1]):
        for piece in (form[i : i + 12] for i in range(len(form) - 11)):
            assert piece.isspace() or piece not in redacted, (piece, redacted)
    assert len(redacted) <= LIMIT


@settings(max_examples=200, deadline=None)
@given(recipients(), st.data())
def test_every_written_form_of_the_recipient_goes(phone, data):
    redacted = redact(f"refused: {data.draw(written_forms(phone))}; try again", phone)
    assert redacted.startswith("refused: [recipient]")
    assert not re.search(r"\d", redacted)


@pytest.mark.parametrize(
    "text",
    [
        "Meta cannot deliver this message (#131026): (#131026) Message Undeliverable - Message Undeliverable.",
        "Twilio error 63016 (HTTP 400): Failed to send freeform message because you are outside the allowed window.",
        'Evolution API busy or failing (HTTP 500): ["Connection Closed"]',
        "Meta is throttling or failing (#130429): (#130429) Rate limit hit - retry in 1.5 s",
    ],
)
def test_a_text_with_nothing_private_is_unchanged(text):
    assert redact(text, PHONE, [TEXT]) == text


def test_other_long_numbers_go_and_short_ones_stay():
    redacted = redact("contact +1 415 555 2671 (id 12345678, ref 1234567) failed 3 times, code 21211", PHONE)
    assert redacted == "contact [number] (id [number], ref 1234567) failed 3 times, code 21211"


def test_a_short_text_goes_where_it_stands_as_a_word():
    redacted = redact("variable 'Ana' refused; Anatomy and Banana stay", PHONE, ["Ana"])
    assert redacted == "variable '[text]' refused; Anatomy and Banana stay"


def test_a_long_answer_is_cut_and_its_cut_piece_never_shown():
    head = "x" * (SCAN - 8)
    redacted = redact(head + TEXT, PHONE, [TEXT], limit=2 * SCAN)  # the cut leaves 8 characters of TEXT
    assert redacted.endswith("…")
    assert TEXT[:8] not in redacted
    assert len(redact("y" * 10 * SCAN, PHONE)) == LIMIT


def test_the_private_texts_of_a_message():
    message = OutboundMessage(
        "msg-1",
        PHONE,
        "Segue o boleto",
        media=Media("https://example.com/b.pdf", "document", caption="Boleto de março", filename="joana.pdf"),
        template=Template(
            "pedido",
            components=[
                {"type": "body", "parameters": [{"type": "text", "text": "Joana"}, {"type": "text", "text": 42}]}
            ],
            variables={"1": "Joana Silva"},
        ),
    )
    expected = {"Segue o boleto", "Boleto de março", "joana.pdf", "Joana Silva", "Joana", "42"}
    assert set(message.private_texts) == expected


# ---- each provider, its fake echoing the request ---------------------------------------------------

# Per provider: an error it retries, then one that fails the message, each repeating the request.
ECHOES = {
    "meta": lambda: (
        meta.echo_error(500, 131000, "(#131000) Something went wrong"),
        meta.echo_error(400, 131026, "(#131026) Message Undeliverable"),
    ),
    "evolution": lambda: (evolution.echo_error(500, "Internal Server Error"), evolution.echo_error(400, "Bad Request")),
    "twilio": lambda: (
        twilio.echo_error(500, 20500, "Internal Server Error"),
        twilio.echo_error(400, 63016, "Failed to send freeform message outside the allowed window"),
    ),
}
CASES = {"meta": meta.CASE, "evolution": evolution.CASE, "twilio": twilio.CASE}


@pytest.fixture(params=sorted(ECHOES))
def echoing(request):
    """(case, its running fake, its echoing errors: a retried one, a final one)."""
    case = CASES[request.param]
    fake = case.start_fake()
    yield case, fake, ECHOES[request.param]()
    fake.stop()


def provider_for(case, fake):
    settings = load_settings({"API_KEY": "a-long-test-api-key-0123", **case.env(fake)})
    return build_provider(case.name, settings)


def test_an_echoed_error_is_redacted_and_its_answer_logged_at_debug_only(echoing, caplog):
    case, fake, echoes = echoing
    provider = provider_for(case, fake)
    caplog.set_level(logging.DEBUG, logger="providers")
    for echo in echoes:
        caplog.clear()
        fake.script(echo)
        with pytest.raises(ProviderError) as raised:
            provider.send(OutboundMessage("msg-1", PHONE, TEXT))
        assert leaks(json.dumps(raised.value.raw, ensure_ascii=False)), "the fake must repeat the request"
        assert leaks(str(raised.value)) == []
        assert "[recipient]" in str(raised.value) and "[text]" in str(raised.value)
        logged = [record for record in caplog.records if "_API_ERROR]" in record.getMessage()]
        assert [record.levelno for record in logged] == [logging.DEBUG]  # the answer itself: at debug, once
        assert all(leaks(record.getMessage(), text="") == [] for record in caplog.records)  # the number: never
        assert all(leaks(record.getMessage()) == [] for record in caplog.records if record.levelno >= logging.INFO)


@pytest.mark.parametrize("name", ["meta", "twilio"])
def test_echoed_template_values_are_redacted(name):
    case = CASES[name]
    fake = case.start_fake()
    try:
        fake.script(ECHOES[name]()[1])
        components = [{"type": "body", "parameters": [{"type": "text", "text": "Joana Prado Albuquerque"}]}]
        template = Template("HX" + "0123456789abcdef" * 2, "pt_BR", components, {"1": "Joana Prado Albuquerque"})
        with pytest.raises(ProviderError) as raised:
            provider_for(case, fake).send(OutboundMessage("msg-1", PHONE, template=template))
        assert "Joana Prado Albuquerque" in json.dumps(raised.value.raw, ensure_ascii=False)
        assert leaks(str(raised.value), text="Joana Prado Albuquerque") == []
    finally:
        fake.stop()


# ---- end to end: API → worker → echoing fake → last_error, the callback, the log --------------------


def test_an_echoed_error_reaches_no_log_no_record_and_no_callback(
    echoing, make_app, start_worker, start_callbacks_worker
):
    case, fake, echoes = echoing
    receiver = FakeReceiver().start()
    try:
        env = {**case.env(fake), **callback_env(), "JOB_ATTEMPTS": "3", "JOB_BACKOFF_DELAY": "50"}
        env["SENDER_RATE_EVOLUTION"] = "0"  # no pacing between the attempts
        client = make_app(**env)
        worker = start_worker(**env)
        callbacks = start_callbacks_worker(**env)
        fake.script(*echoes)
        body = {"recipient_phone": PHONE, "message_body": TEXT, "external_id": "c1", "callback_url": receiver.hook_url}
        answer = client.post("/v1/messages/send", json=body, headers=auth())
        assert answer.status_code == 200, answer.json
        message_id = answer.json["message_id"]

        (failed,) = wait_for(lambda: receiver.events("message.failed"), 30, what="the message.failed callback")
        message = client.get(f"/v1/messages/{message_id}", headers=auth()).json
        assert message["status"] == "failed" and message["attempts"] == 2
        assert len(fake.received) == 2
        assert leaks(json.dumps(message, ensure_ascii=False)) == []
        assert leaks(json.dumps(failed, ensure_ascii=False)) == []
        wait_for(lambda: "retrying in" in worker.output, 10, what="the retry's log line")
        assert leaks(worker.output) == []
        assert leaks(callbacks.output) == []
        # The error still says what happened, with what was private taken out.
        assert "[recipient]" in message["last_error"]["message"] and "[text]" in message["last_error"]["message"]
        assert failed["error"] == {"code": message["last_error"]["code"], "message": message["last_error"]["message"]}
    finally:
        receiver.stop()
