"""Hand-written bad input, against the real app and a real Redis.

The rule for every refusal: a 4xx whose body is a JSON error (`error`, `code`, and `field` naming the
part at fault where there is one), never a 500, and nothing written: the whole Redis database is the
same before and after. Inputs that look odd but are fine (phone numbers in the ways people write them,
unusual external_ids) are accepted and stored exactly as documented.
"""

from __future__ import annotations

import json

import pytest

from dispatcher.accounts import key_id
from dispatcher.api.request_input import MAX_JSON_DEPTH
from tests.conftest import API_KEY, auth, operator, stored_text

BULK_MAX_BYTES = 256 * 1024
PHONE = "+5564999998888"
JSON = {**auth(), "Content-Type": "application/json"}


@pytest.fixture
def client(make_app):
    return make_app(
        BULK_MAX_MESSAGES="10000",
        BULK_MAX_BYTES=str(BULK_MAX_BYTES),
        WEBHOOK_SECRET="callback-signing-secret-0123456789",
        EVOLUTION_WEBHOOK_SECRET="evolution-secret",
    )


@pytest.fixture
def store(client):
    return client.application.extensions["dispatcher"].store


def _snapshot(redis_client) -> dict[str, bytes]:
    """Every key with its serialized value: equal snapshots mean nothing at all was written."""
    return {key: redis_client.dump(key) for key in sorted(redis_client.keys("*"))}


def key_for(path: str) -> dict[str, str]:
    """An operator's key for operator routes (senders' settings, instances), else an account's."""
    return operator() if path.startswith(("/v1/senders", "/v1/instances", "/api/v1/instances")) else auth()


def refused(client, redis_client, path: str, status: int = 400, *, code: str, field: str | None, **request) -> dict:
    """Send the request; assert a JSON error with `code` and `field` and an untouched Redis; return the body."""
    headers = {**request.pop("headers", {}), **key_for(path)}
    before = _snapshot(redis_client)
    response = client.open(path, method=request.pop("method", "POST"), headers=headers, **request)
    assert response.status_code == status, response.get_data()[:500]
    assert response.is_json, response.get_data()[:500]
    body = response.get_json()
    legacy = path.startswith("/api/v1/")
    assert isinstance(body["message" if legacy else "error"], str) and body["code"] == code, body
    assert body.get("field") == field, body
    assert _snapshot(redis_client) == before, f"{path} refused with {status} but wrote to Redis"
    return body


def send_body(**fields) -> dict:
    return {"recipient_phone": PHONE, "message_body": "Olá", "external_id": "bad-input-1", **fields}


def raw_send(message_body: bytes = b"x", external_id: bytes = b"a", extra: bytes = b"") -> bytes:
    """A send body written byte by byte, for what `json=` cannot write (bad UTF-8, lone surrogate escapes)."""
    return b'{"recipient_phone": "+5564999998888", "message_body": "%s", "external_id": "%s"%s}' % (
        message_body,
        external_id,
        extra,
    )


def digits(number: str, zero: int) -> str:
    """`number` with its ASCII digits written in another script, whose digit zero is the code point `zero`."""
    return number.translate(str.maketrans("0123456789", "".join(chr(zero + i) for i in range(10))))


def nested(depth: int, leaf: object = 1) -> object:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


# --- sizes ---


def test_a_single_send_over_1_mib_is_413(client, redis_client):
    raw = json.dumps(send_body(message_body="x" * (1024 * 1024)))
    refused(client, redis_client, "/v1/messages/send", 413, code="body_too_large", field=None, data=raw, headers=JSON)


def test_a_bulk_over_bulk_max_bytes_is_413(client, redis_client):
    rows = [{"recipient_phone": PHONE, "external_id": f"row-{i}", "message_body": "x" * 100} for i in range(2_000)]
    raw = json.dumps({"messages": rows})
    assert len(raw) > BULK_MAX_BYTES
    refused(client, redis_client, "/v1/messages/bulk", 413, code="body_too_large", field=None, data=raw, headers=JSON)


@pytest.mark.parametrize(
    ("path", "size"),
    [
        ("/api/v1/dispatch/single", 1024 * 1024),
        ("/api/v1/dispatch/bulk", BULK_MAX_BYTES),
        ("/api/v1/instances/", 1024 * 1024),
    ],
)
def test_the_seed_routes_refuse_a_body_too_large_in_their_own_shape(client, redis_client, path, size):
    raw = json.dumps({"instanceName": "loja-1", "type": "text", "message": "x" * size, "recipients": []})
    refused(client, redis_client, path, 413, code="body_too_large", field=None, data=raw, headers=JSON)


def test_the_bulk_limit_is_its_own_not_the_1_mib_of_a_single_send(make_app, redis_client):
    """Between 1 MiB and BULK_MAX_BYTES a bulk is accepted: the 1 MiB cap must not leak onto bulk endpoints."""
    client = make_app(BULK_MAX_BYTES=str(4 * 1024 * 1024))
    rows = [{"recipient_phone": PHONE, "external_id": f"row-{i}", "message_body": "x" * 200} for i in range(6_000)]
    raw = json.dumps({"messages": rows})
    assert 1024 * 1024 < len(raw) < 4 * 1024 * 1024
    response = client.post("/v1/messages/bulk", data=raw, headers=JSON)
    assert response.status_code == 200 and response.json["accepted"] == 6_000


def test_10001_rows_are_413_naming_messages(make_app, redis_client):
    client = make_app(BULK_MAX_MESSAGES="10000")
    rows = [{"recipient_phone": PHONE, "external_id": f"row-{i}", "message_body": "x"} for i in range(10_001)]
    body = refused(
        client, redis_client, "/v1/messages/bulk", 413, code="too_many_rows", field="messages", json={"messages": rows}
    )
    assert body["limit"] == 10_000 and "10001" in body["error"]


def test_10001_recipients_on_the_seed_route_are_413_naming_recipients(make_app, redis_client):
    client = make_app(BULK_MAX_MESSAGES="10000")
    recipients = [{"phone": PHONE} for _ in range(10_001)]
    body = {"instanceName": "loja-1", "type": "text", "message": "oi", "recipients": recipients}
    refused(client, redis_client, "/api/v1/dispatch/bulk", 413, code="too_many_rows", field="recipients", json=body)


# --- nesting ---


@pytest.mark.parametrize(
    "raw",
    [b"[" * 10_000 + b"]" * 10_000, b"[" * 10_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000],
    ids=["10000-arrays", "10000-unclosed", "10000-objects"],
)
@pytest.mark.parametrize("path", ["/v1/messages/send", "/v1/messages/bulk", "/api/v1/dispatch/single"])
def test_json_nested_10000_levels_deep_is_a_400(client, redis_client, raw, path):
    """Python's JSON parser recurses: it exhausts the stack long before the body ends, even an unclosed one."""
    refused(client, redis_client, path, code="too_deep", field="body", data=raw, headers=JSON)


def test_nesting_is_refused_past_the_limit_naming_the_field(client, redis_client):
    template = {"name": "reminder", "components": [{"parameters": nested(MAX_JSON_DEPTH)}]}
    before = _snapshot(redis_client)
    response = client.post("/v1/messages/send", json=send_body(template=template), headers=auth())
    assert response.status_code == 400 and response.json["code"] == "too_deep"
    assert response.json["field"].startswith("template.components.0.parameters.0.0"), response.json
    assert _snapshot(redis_client) == before


def test_nesting_within_the_limit_is_accepted(client):
    """A provider template's components nest a few levels (Meta's parameters); a dozen is nothing unusual."""
    template = {"name": "reminder", "components": [{"parameters": nested(12, {"type": "text", "text": "Ana"})}]}
    response = client.post("/v1/messages/send", json=send_body(template=template), headers=auth())
    assert response.status_code == 200, response.json


def test_a_deeply_nested_webhook_is_a_400(client, redis_client):
    headers = {"X-Webhook-Secret": "evolution-secret", "Content-Type": "application/json"}
    cases = [
        (b"[" * 10_000 + b"]" * 10_000, "malformed_json", "body"),
        (json.dumps({"event": "messages.upsert", "data": nested(200)}), "too_deep", "data" + ".0" * 63),
    ]
    for raw, code, field in cases:
        refused(client, redis_client, "/v1/webhooks/evolution", code=code, field=field, data=raw, headers=headers)


# --- content types and encodings ---

BODY_ENDPOINTS = [
    ("POST", "/v1/messages/send"),
    ("POST", "/v1/messages/bulk"),
    ("PUT", "/v1/senders/mock/s1"),
    ("POST", "/v1/instances"),
    ("POST", "/api/v1/dispatch/single"),
    ("POST", "/api/v1/dispatch/bulk"),
]


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"],
)
@pytest.mark.parametrize(("method", "path"), BODY_ENDPOINTS)
def test_a_body_that_is_not_json_is_refused_naming_content_type(client, redis_client, method, path, content_type):
    headers = {**key_for(path), **({"Content-Type": content_type} if content_type else {})}
    data = json.dumps(send_body()) if content_type != "application/x-www-form-urlencoded" else "recipient_phone=1"
    refused(
        client, redis_client, path, method=method, code="unsupported_content_type", field="Content-Type", data=data,
        headers=headers,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "code", "field"),
    [
        (raw_send(message_body=b"\xff\xfe"), "malformed_json", "body"),
        (raw_send(message_body=b"\xc0\xaf"), "malformed_json", "body"),  # an overlong encoding of "/"
        (raw_send(message_body=b"\xe2\x82"), "malformed_json", "body"),  # a truncated sequence
        # A UTF-8-encoded surrogate (CESU-8): Python's JSON reader lets it through; it must not reach Redis.
        (raw_send(message_body=b"\xed\xa0\x80"), "invalid_unicode", "message_body"),
        (raw_send(external_id=b"\\ud800"), "invalid_unicode", "external_id"),
        (raw_send(message_body=b"\\udfff\\ud83d"), "invalid_unicode", "message_body"),  # a pair, reversed
        (raw_send(extra=b', "\\ud800": 1'), "invalid_unicode", "body"),  # in a key
        (raw_send() + b" trailing", "malformed_json", "body"),
        (b"", "malformed_json", "body"),
        (b"[]", "invalid_body", "body"),
        (b'"a string"', "invalid_body", "body"),
    ],
    ids=["ff-fe", "overlong", "truncated", "cesu-surrogate", "escaped-lone-high", "reversed-pair", "surrogate-key",
         "trailing", "empty", "array", "string"],
)  # fmt: skip
def test_invalid_utf8_and_unpaired_surrogates_are_400(client, redis_client, raw, code, field):
    refused(client, redis_client, "/v1/messages/send", code=code, field=field, data=raw, headers=JSON)


def test_an_unpaired_surrogate_in_a_bulk_row_names_the_row(client, redis_client):
    raw = b'{"messages": [{"recipient_phone": "+5564999998888", "external_id": "ok", "message_body": "x"},'
    raw += b' {"recipient_phone": "+5564999998888", "external_id": "\\udfff", "message_body": "x"}]}'
    refused(client, redis_client, "/v1/messages/bulk", code="invalid_unicode", field="messages.1.external_id", data=raw,
            headers=JSON)  # fmt: skip


def test_a_valid_surrogate_pair_is_an_emoji_and_is_accepted(client, store):
    raw = b'{"recipient_phone": "+5564999998888", "message_body": "oi \\ud83d\\ude00", "external_id": "emoji"}'
    response = client.post("/v1/messages/send", data=raw, headers=JSON)
    assert response.status_code == 200
    assert stored_text(store.redis, response.json["message_id"]) == "oi \N{GRINNING FACE}"


def test_an_unknown_key_where_unknown_keys_are_refused_is_a_400_naming_it(client, redis_client):
    """PUT /v1/senders refuses unknown keys; it used to answer 500 (StopIteration) instead of naming the key."""
    refused(client, redis_client, "/v1/senders/mock/s1", method="PUT", code="unknown_field", field="bogus",
            json={"bogus": 1})  # fmt: skip


# --- phone numbers ---

ACCEPTED_PHONES = {
    "+5564999998888": "+5564999998888",
    "+55 64 99999 8888": "+5564999998888",
    "+55-64-99999-8888": "+5564999998888",
    "+55 (64) 99999-8888": "+5564999998888",
    "+55.64.99999.8888": "+5564999998888",
    "(64) 99999-8888": "+5564999998888",  # no country code: read in DEFAULT_REGION (BR)
    "64999998888": "+5564999998888",
    "5564999998888": "+5564999998888",
    "0055 64 99999-8888": "+5564999998888",  # leading 00, the international prefix
    "00 1 415 555 2671": "+14155552671",
    "+1 415 555 2671": "+14155552671",
    " +5564999998888\n": "+5564999998888",  # surrounding whitespace is trimmed
    "+55 64 99999\u00a08888": "+5564999998888",  # a no-break space, as spreadsheets paste it
    digits("+5564999998888", 0x0660): "+5564999998888",  # Arabic-Indic digits: phonenumbers normalises them
    digits("+5564999998888", 0x06F0): "+5564999998888",  # Extended Arabic-Indic (Persian) digits
    digits("+5564999998888", 0xFF10): "+5564999998888",  # full-width digits
    digits("+55 (64) 99999-8888", 0x0966): "+5564999998888",  # Devanagari digits, with the usual punctuation
}
REFUSED_PHONES = {
    "abc": "invalid_phone",
    "+55 64 9999A-8888": "invalid_phone",  # letters
    "1-800-FLOWERS": "invalid_phone",
    "123": "invalid_phone",  # too short
    "+1234567890123456": "invalid_phone",  # 16 digits: too long
    "+55 64 0000 0000": "invalid_phone",  # the right length, but no such number
    "+55 64 99999 8888 ext. 12": "invalid_phone",
    "++5564999998888": "invalid_phone",
    "+55+64999998888": "invalid_phone",
    "(+55) 64 99999-8888": "invalid_phone",  # a + that does not lead
    "\uff0b5564999998888": "invalid_phone",  # a full-width plus sign (full-width digits are fine)
    "tel:+5564999998888": "invalid_phone",
    "+5564999998888\N{MOBILE PHONE}": "invalid_phone",
    "\N{MOBILE PHONE}": "invalid_phone",
    "\u200b+5564999998888": "invalid_phone",  # a zero-width space
    "+5564999998888\x00": "invalid_phone",
    "+55 64 99999\u20138888": "invalid_phone",  # an en dash
    "   ": "invalid_phone",
    "": "invalid_field",  # must not be empty
    "+" + "5" * 32: "invalid_field",  # longer than 32 characters
}
WRONG_TYPES = [5564999998888, 5.564999998888e12, ["+5564999998888"], {"number": "+5564999998888"}, True]


@pytest.mark.parametrize(("given", "e164"), ACCEPTED_PHONES.items(), ids=[repr(p) for p in ACCEPTED_PHONES])
def test_phone_numbers_people_write_are_accepted_as_e164(client, store, given, e164):
    response = client.post("/v1/messages/send", json=send_body(recipient_phone=given), headers=auth())
    assert response.status_code == 200, response.json
    assert store.get(response.json["message_id"]).recipient == e164


@pytest.mark.parametrize(("given", "code"), REFUSED_PHONES.items(), ids=[repr(p) for p in REFUSED_PHONES])
def test_phone_numbers_that_are_not_are_refused(client, redis_client, store, given, code):
    refused(client, redis_client, "/v1/messages/send", code=code, field="recipient_phone",
            json=send_body(recipient_phone=given))  # fmt: skip
    assert store.find_by_external_id(key_id(API_KEY), "bad-input-1") is None


@pytest.mark.parametrize("given", [*WRONG_TYPES, None], ids=repr)
def test_a_phone_that_is_not_a_string_is_refused(client, redis_client, given):
    code = "missing_fields" if given is None else "invalid_field"
    body = refused(client, redis_client, "/v1/messages/send", code=code, field="recipient_phone",
                   json=send_body(recipient_phone=given))  # fmt: skip
    expected = "Missing required fields: recipient_phone" if given is None else "recipient_phone must be a string"
    assert body["error"] == expected


def test_bulk_rows_with_odd_phones_are_refused_one_by_one(client, store):
    phones = [*list(ACCEPTED_PHONES)[:4], *list(REFUSED_PHONES)[:4], 5564999998888, None]
    rows = [
        {"recipient_phone": phone, "external_id": f"row-{i}", "message_body": "x"} for i, phone in enumerate(phones)
    ]
    answer = client.post("/v1/messages/bulk", json={"messages": rows}, headers=auth()).json
    assert (answer["accepted"], answer["rejected"]) == (4, 6)
    for result in answer["results"][4:]:
        assert result["field"] == "recipient_phone" and "message_id" not in result, result
        assert store.find_by_external_id(key_id(API_KEY), result["external_id"]) is None
    for result, phone in zip(answer["results"][:4], phones, strict=False):
        assert store.get(result["message_id"]).recipient == ACCEPTED_PHONES[phone]


# --- templates: plain substitution, never evaluation ---

VARIABLES = {"name": "Ana", "items": "I", "sneaky": "{{name}} {{__class__}} ${jndi:ldap://evil.example/a}"}


@pytest.mark.parametrize(
    ("template", "sent"),
    [
        ("{{#each items}}x{{/each}}", "{{#each items}}x{{/each}}"),  # not a placeholder: left as written
        ("{% for x in items %}{{ name }}{% endfor %}", "{% for x in items %}Ana{% endfor %}"),
        ("${jndi:ldap://evil.example/a}", "${jndi:ldap://evil.example/a}"),
        ("{{7*7}} #{7*7} <%= 7*7 %>", "{{7*7}} #{7*7} <%= 7*7 %>"),
        ("{{name|${jndi:ldap://x}}}", "{{name|${jndi:ldap://x}}}"),
        # a value is inserted as text: the placeholders it holds are not filled in turn
        ("Hi {{sneaky}}", "Hi {{name}} {{__class__}} ${jndi:ldap://evil.example/a}"),
        ("{{{name}}}", "{Ana}"),
    ],
)
def test_template_syntax_of_other_engines_is_plain_text(client, store, template, sent):
    rows = [{"recipient_phone": PHONE, "external_id": "tpl", "variables": VARIABLES}]
    answer = client.post("/v1/messages/bulk", json={"messages": rows, "template": template}, headers=auth()).json
    assert answer["accepted"] == 1, answer
    assert stored_text(store.redis, answer["results"][0]["message_id"]) == sent


@pytest.mark.parametrize(
    ("template", "variable"),
    [
        ("{{__class__}}", "__class__"),
        ("{{ name.__init__ }}", "name.__init__"),
        ("{{name}} {{ name.__class__.__mro__ }}", "name.__class__.__mro__"),
        ("{{ __import__ }}", "__import__"),
    ],
)
def test_attribute_lookups_in_templates_are_unknown_variables(client, store, template, variable):
    """`{{ name.__init__ }}` is the name of a variable the row does not have, not an attribute of `name`."""
    rows = [{"recipient_phone": PHONE, "external_id": "tpl", "variables": VARIABLES}]
    answer = client.post("/v1/messages/bulk", json={"messages": rows, "template": template}, headers=auth()).json
    assert (answer["accepted"], answer["batch_id"]) == (0, None)
    assert answer["results"][0]["code"] == "missing_variable"
    assert answer["results"][0]["field"] == f"variables.{variable}"
    assert store.find_by_external_id(key_id(API_KEY), "tpl") is None


def test_a_variable_named_like_an_attribute_is_just_a_name(client, store):
    rows = [{"recipient_phone": PHONE, "external_id": "tpl", "variables": {"__class__": "C", "name.__init__": "I"}}]
    body = {"messages": rows, "template": "{{__class__}} {{ name.__init__ }}"}
    answer = client.post("/v1/messages/bulk", json=body, headers=auth()).json
    assert stored_text(store.redis, answer["results"][0]["message_id"]) == "C I"


def test_the_seed_bulk_route_refuses_an_attribute_lookup_whole(client, redis_client):
    body = {
        "instanceName": "loja-1",
        "type": "text",
        "message": "Oi {{ name.__class__ }}",
        "recipients": [{"phone": PHONE}],
    }
    refused(client, redis_client, "/api/v1/dispatch/bulk", code="missing_variable",
            field="recipients/0/variables.name.__class__", json=body)  # fmt: skip


# --- callback URLs ---


@pytest.mark.parametrize(
    "url",
    [
        "https://x.example/a\r\nX-Injected: 1",
        "https://x.example/a\nX-Injected: 1",
        "https://x.example/a\rX-Injected: 1",
        "https://x.example\r\n.evil.example/",
        "https://x.example/?q=1\r\nX-Injected: 1",
        "https://x.example/a\x00",
        "https://x.example/a\x1b[31m",
        "https://x.example/a\tb",
        "https://ex%0d%0aample.com/",
    ],
    ids=repr,
)
def test_a_callback_url_with_control_characters_is_refused(client, redis_client, url):
    refused(client, redis_client, "/v1/messages/send", code="invalid_field", field="callback_url",
            json=send_body(callback_url=url))  # fmt: skip
    rows = [{"recipient_phone": PHONE, "external_id": "row", "message_body": "x"}]
    refused(client, redis_client, "/v1/messages/bulk", code="invalid_field", field="callback_url",
            json={"messages": rows, "callback_url": url})  # fmt: skip


@pytest.mark.parametrize("url", ["https://x.example/a%0d%0aX-Injected:%201", "https://x.example/a?b=%0D%0A"])
def test_an_escaped_crlf_stays_escaped(client, redis_client, url):
    """Percent-escapes are legal in a URL: kept exactly as given, never decoded into a header break."""
    response = client.post("/v1/messages/send", json=send_body(callback_url=url), headers=auth())
    assert response.status_code == 200
    stored = redis_client.hget(f"dispatch:msg:{response.json['message_id']}", "callback_url")
    assert stored == url and "\r" not in stored and "\n" not in stored


def test_a_media_url_with_a_nul_is_refused_naming_it(client, redis_client):
    media = {"url": "https://x.example/menu\x00.pdf", "type": "document"}
    body = refused(client, redis_client, "/v1/messages/send", code="invalid_field", field="media",
                   json=send_body(media=media))  # fmt: skip
    assert body["error"] == "media.url must not contain control characters"


def test_an_error_inside_a_nested_object_says_which_field(client, redis_client):
    body = refused(client, redis_client, "/v1/messages/send", code="invalid_field", field="media",
                   json=send_body(media={"type": "document"}))  # fmt: skip
    assert body["error"] == "media.url: Missing data for required field."
    body = refused(client, redis_client, "/v1/messages/send", code="invalid_field", field="media",
                   json=send_body(media={"url": "https://x.example/a.pdf", "type": "sticker"}))  # fmt: skip
    assert body["error"].startswith("media.type must be one of")


# --- external_id ---


@pytest.mark.parametrize(
    ("given", "code", "error"),
    [
        ("x" * 256, "invalid_field", "external_id must be at most 255 characters"),
        ("\N{GRINNING FACE}" * 256, "invalid_field", "external_id must be at most 255 characters"),
        ("", "invalid_field", "external_id must not be empty"),
        (None, "missing_fields", "Missing required fields: external_id"),
        (123, "invalid_field", "external_id must be a string"),
        (["a"], "invalid_field", "external_id must be a string"),
        ({"id": "a"}, "invalid_field", "external_id must be a string"),
        (True, "invalid_field", "external_id must be a string"),
    ],
    ids=repr,
)
def test_a_bad_external_id_is_refused(client, redis_client, given, code, error):
    body = refused(client, redis_client, "/v1/messages/send", code=code, field="external_id",
                   json=send_body(external_id=given))  # fmt: skip
    assert body["error"] == error


@pytest.mark.parametrize(
    "given",
    [
        "x" * 255,
        "\N{GRINNING FACE}" * 255,  # 255 characters, 1,020 bytes: the limit counts characters
        " ",
        "a\r\nb",
        "a\x00b",
        "../../etc/passwd",
        "dispatch:msg:x",
        "*",
        "<script>alert(1)</script>",
        "\u202egnp.exe",
        "%00",
    ],
    ids=repr,
)
def test_an_odd_external_id_is_an_opaque_id_stored_and_found_exactly(client, given):
    response = client.post("/v1/messages/send", json=send_body(external_id=given), headers=auth())
    assert response.status_code == 200, response.json
    found = client.get("/v1/messages", query_string={"external_id": given}, headers=auth())
    assert found.status_code == 200 and found.json["external_id"] == given
    assert found.json["message_id"] == response.json["message_id"]


def test_an_oversize_external_id_in_a_bulk_row_refuses_that_row_only(client, store):
    rows = [
        {"recipient_phone": PHONE, "external_id": "x" * 256, "message_body": "x"},
        {"recipient_phone": PHONE, "external_id": "ok", "message_body": "x"},
    ]
    answer = client.post("/v1/messages/bulk", json={"messages": rows}, headers=auth()).json
    assert (answer["accepted"], answer["rejected"]) == (1, 1)
    assert answer["results"][0]["field"] == "external_id" and "message_id" not in answer["results"][0]
    assert store.find_by_external_id(key_id(API_KEY), "x" * 256) is None


# --- query arguments ---


@pytest.mark.parametrize(
    "value",
    ["\N{SUPERSCRIPT THREE}", "\N{ARABIC-INDIC DIGIT THREE}", "9" * 19, "9" * 5000, "-1", "1e3", " 1", "0x10", ""],
    ids=repr,
)
@pytest.mark.parametrize(
    ("path", "fixed", "name"),
    [
        ("/v1/webhooks/deliveries", {"state": "dead"}, "cursor"),
        ("/v1/webhooks/deliveries", {"state": "dead"}, "limit"),
        ("/v1/messages", {"status": "failed"}, "limit"),
    ],
)
def test_a_page_size_or_cursor_that_is_not_a_plain_whole_number_is_a_400(
    client, redis_client, path, fixed, name, value
):
    """`"³".isdigit()` is true and int() refuses it, int() refuses 5,000 digits, and Redis refuses an index past
    2**63: each used to be a 500."""
    query = {**fixed, name: value}
    refused(client, redis_client, path, method="GET", code="invalid_field", field=name, query_string=query)
