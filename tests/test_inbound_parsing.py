"""The providers' webhooks, verified and parsed: pure functions, no app, no Redis.

Payloads are the providers' own examples where they publish them (the source of each is in a comment);
the rest follow the shapes in their source code.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json

import pytest
from werkzeug.datastructures import MultiDict

from providers import evolution_inbound, meta_inbound, twilio_inbound
from providers.inbound import IncomingMessage, SenderState, StatusReport, WebhookMalformed, WebhookRejected
from tests.fakes import inbound as fake

# ==== Twilio ==========================================================================================

# Twilio's published test vector (Security docs, and the README beside the provider specs).
VECTOR_TOKEN = "12345"
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
VECTOR_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="

# A WhatsApp StatusCallback as Twilio's "Track the message status" docs list it.
TWILIO_DELIVERED = {
    "ChannelPrefix": "whatsapp",
    "ApiVersion": "2010-04-01",
    "MessageStatus": "delivered",
    "SmsSid": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
    "SmsStatus": "delivered",
    "ChannelInstallSid": "XE5d8e6e4b4d4a4ba3b3b9c5f5f5f5f5f5",
    "To": "whatsapp:+5511999998888",
    "From": "whatsapp:+14155238886",
    "MessageSid": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
    "AccountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    "ChannelToAddress": "+5511999998888",
}

# An incoming WhatsApp message as Twilio's "Twilio's request to your incoming message Webhook URL" lists
# it, replying to one of ours (OriginalRepliedMessageSid) with a picture.
TWILIO_INCOMING = {
    "SmsMessageSid": "MM8f2e0d0e1d6a4b1e9e7c7a1c0b9f3e21",
    "NumMedia": "1",
    "ProfileName": "João",
    "MessageType": "image",
    "SmsSid": "MM8f2e0d0e1d6a4b1e9e7c7a1c0b9f3e21",
    "WaId": "5511999998888",
    "SmsStatus": "received",
    "Body": "Segue o comprovante",
    "To": "whatsapp:+14155238886",
    "NumSegments": "1",
    "ReferralNumMedia": "0",
    "MessageSid": "MM8f2e0d0e1d6a4b1e9e7c7a1c0b9f3e21",
    "AccountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    "From": "whatsapp:+5511999998888",
    "MediaContentType0": "image/jpeg",
    "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/ACXXX/Messages/MM8f2e/Media/ME96a1c3e1",
    "OriginalRepliedMessageSender": "whatsapp:+14155238886",
    "OriginalRepliedMessageSid": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
    "ApiVersion": "2010-04-01",
}


def test_twilio_signature_matches_the_published_vector():
    assert twilio_inbound.signature(VECTOR_TOKEN, VECTOR_URL, VECTOR_PARAMS.items()) == VECTOR_SIGNATURE


def test_twilio_verify_accepts_the_published_vector():
    twilio_inbound.verify(VECTOR_TOKEN, VECTOR_URL, VECTOR_PARAMS, VECTOR_SIGNATURE)
    twilio_inbound.verify(VECTOR_TOKEN, VECTOR_URL, MultiDict(VECTOR_PARAMS), VECTOR_SIGNATURE)
    twilio_inbound.verify(VECTOR_TOKEN, VECTOR_URL, list(VECTOR_PARAMS.items()), VECTOR_SIGNATURE)


@pytest.mark.parametrize(
    "url, params",
    [
        (VECTOR_URL, {**VECTOR_PARAMS, "Digits": "1235"}),
        (VECTOR_URL, {**VECTOR_PARAMS, "Extra": ""}),
        ("https://mycompany.com/myapp.php?foo=1&bar=3", VECTOR_PARAMS),
        ("http://mycompany.com/myapp.php?foo=1&bar=2", VECTOR_PARAMS),
        ("https://mycompany.com:8443/myapp.php?foo=1&bar=2", VECTOR_PARAMS),
    ],
)
def test_twilio_verify_refuses_any_change(url, params):
    with pytest.raises(WebhookRejected) as refused:
        twilio_inbound.verify(VECTOR_TOKEN, url, params, VECTOR_SIGNATURE)
    assert refused.value.status == 403


@pytest.mark.parametrize(
    "signed_url, received_url",
    [
        ("https://mycompany.com/myapp.php?foo=1&bar=2", "https://mycompany.com:443/myapp.php?foo=1&bar=2"),
        ("https://mycompany.com:443/myapp.php?foo=1&bar=2", "https://mycompany.com/myapp.php?foo=1&bar=2"),
        ("http://mycompany.com/hook", "http://mycompany.com:80/hook"),
        ("http://mycompany.com:80/hook", "http://mycompany.com/hook"),
    ],
)
def test_twilio_verify_accepts_the_url_with_or_without_its_default_port(signed_url, received_url):
    given = twilio_inbound.signature(VECTOR_TOKEN, signed_url, VECTOR_PARAMS.items())
    twilio_inbound.verify(VECTOR_TOKEN, received_url, VECTOR_PARAMS, given)


def test_twilio_verify_does_not_drop_a_port_that_is_not_the_default():
    given = twilio_inbound.signature(VECTOR_TOKEN, "https://mycompany.com/hook", VECTOR_PARAMS.items())
    with pytest.raises(WebhookRejected):
        twilio_inbound.verify(VECTOR_TOKEN, "https://mycompany.com:8443/hook", VECTOR_PARAMS, given)


def test_twilio_signature_keeps_every_value_of_a_repeated_name_sorted():
    pairs = [("To", "+1"), ("MediaUrl", "https://b"), ("MediaUrl", "https://a")]
    expected_message = "https://x/hook" + "MediaUrlhttps://a" + "MediaUrlhttps://b" + "To+1"
    expected = hmac.new(b"tok", expected_message.encode(), hashlib.sha1).digest()
    assert twilio_inbound.signature("tok", "https://x/hook", pairs) == base64.b64encode(expected).decode()
    # a MultiDict (Flask's request.form) keeps the repeats too
    twilio_inbound.verify("tok", "https://x/hook", MultiDict(pairs), base64.b64encode(expected).decode())


def test_twilio_missing_signature_is_401_wrong_is_403_unconfigured_is_403():
    for missing in (None, ""):
        with pytest.raises(WebhookRejected) as refused:
            twilio_inbound.verify(VECTOR_TOKEN, VECTOR_URL, VECTOR_PARAMS, missing)
        assert refused.value.status == 401
    with pytest.raises(WebhookRejected) as refused:
        twilio_inbound.verify(VECTOR_TOKEN, VECTOR_URL, VECTOR_PARAMS, "0/KCTR6DLpKmkAf8muzZqo1nDgQ")
    assert refused.value.status == 403
    with pytest.raises(WebhookRejected) as refused:
        twilio_inbound.verify("", VECTOR_URL, VECTOR_PARAMS, VECTOR_SIGNATURE)
    assert refused.value.status == 403
    assert str(refused.value).startswith("twilio webhooks are not configured: ")


def test_twilio_fake_requests_pass_verification():
    url = "https://dispatcher.example.com/webhooks/twilio/status?tenant=a"
    headers, form = fake.twilio_signed("secret-token", url, fake.twilio_status("SM" + "a" * 32, "delivered"))
    twilio_inbound.verify("secret-token", url, form, headers["X-Twilio-Signature"])


@pytest.mark.parametrize(
    "raw, ours",
    [
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("read", "read"),
        ("failed", "failed"),
        ("undelivered", "failed"),
        ("canceled", "failed"),
    ],
)
def test_twilio_status_map(raw, ours):
    params = {**TWILIO_DELIVERED, "MessageStatus": raw, "SmsStatus": raw}
    [report] = twilio_inbound.parse(params)
    assert report == StatusReport(
        provider="twilio",
        provider_message_id="SM1f0e8ae6ade43cb3c0ce4525424e404f",
        status=ours,
        event_key=f"SM1f0e8ae6ade43cb3c0ce4525424e404f:{raw}",
        at=None,
        provider_status=raw,
    )


@pytest.mark.parametrize("raw", ["queued", "sending", "accepted", "scheduled", "receiving", "partially_delivered"])
def test_twilio_intermediate_statuses_are_skipped(raw):
    assert twilio_inbound.parse({**TWILIO_DELIVERED, "MessageStatus": raw, "SmsStatus": raw}) == []


def test_twilio_read_receipt_comes_with_event_type_read():
    # WhatsApp read receipts: MessageStatus=read plus EventType=READ; older posts only had the EventType
    [report] = twilio_inbound.parse({**TWILIO_DELIVERED, "MessageStatus": "read", "EventType": "READ"})
    assert (report.status, report.event_key) == ("read", "SM1f0e8ae6ade43cb3c0ce4525424e404f:read")
    bare = {k: v for k, v in TWILIO_DELIVERED.items() if k not in ("MessageStatus", "SmsStatus")}
    assert twilio_inbound.parse({**bare, "EventType": "READ"})[0].status == "read"


def test_twilio_failed_and_undelivered_carry_the_error_code():
    undelivered = {**TWILIO_DELIVERED, "MessageStatus": "undelivered", "SmsStatus": "undelivered"}
    [report] = twilio_inbound.parse({**undelivered, "ErrorCode": "63016", "ErrorMessage": "Outside the window"})
    assert (report.status, report.error_code, report.error_message) == ("failed", "63016", "Outside the window")
    [report] = twilio_inbound.parse({**undelivered, "ErrorCode": "63024", "ChannelStatusMessage": "Invalid recipient"})
    assert (report.error_code, report.error_message, report.provider_status) == (
        "63024",
        "Invalid recipient",
        "undelivered",
    )
    # an ErrorCode beside a success is not a failure reason
    [report] = twilio_inbound.parse({**TWILIO_DELIVERED, "ErrorCode": "30008"})
    assert (report.status, report.error_code) == ("delivered", "")


def test_twilio_incoming_reply_with_media():
    [message] = twilio_inbound.parse(TWILIO_INCOMING)
    assert message == IncomingMessage(
        provider="twilio",
        provider_message_id="MM8f2e0d0e1d6a4b1e9e7c7a1c0b9f3e21",
        from_phone="+5511999998888",
        to="+14155238886",
        event_key="in:MM8f2e0d0e1d6a4b1e9e7c7a1c0b9f3e21",
        text="Segue o comprovante",
        media_url=TWILIO_INCOMING["MediaUrl0"],
        media_kind="image",
        media_mimetype="image/jpeg",
        in_reply_to="SM1f0e8ae6ade43cb3c0ce4525424e404f",
        profile_name="João",
        at=None,
    )


def test_twilio_incoming_text_and_button():
    [message] = twilio_inbound.parse(fake.twilio_reply("+5511999998888", "Quero sair da lista"))
    assert (message.text, message.media_url, message.media_kind, message.in_reply_to) == (
        "Quero sair da lista",
        "",
        "",
        "",
    )
    button = {**fake.twilio_reply("+5511999998888", ""), "ButtonText": "Parar", "ButtonPayload": "stop"}
    assert twilio_inbound.parse(button)[0].text == "Parar"
    pdf = {**TWILIO_INCOMING, "MediaContentType0": "application/pdf"}
    assert twilio_inbound.parse(pdf)[0].media_kind == "document"


@pytest.mark.parametrize(
    "params, missing",
    [
        ({"MessageStatus": "delivered", "To": "whatsapp:+5511999998888"}, "MessageSid or SmsSid"),
        ({"MessageSid": "SM1", "To": "whatsapp:+1"}, "MessageStatus or SmsStatus"),
        ({"MessageSid": "SM1", "SmsStatus": "received", "Body": "oi"}, "From"),
    ],
)
def test_twilio_malformed_posts(params, missing):
    with pytest.raises(WebhookMalformed, match=missing):
        twilio_inbound.parse(params)


# ==== Meta ============================================================================================

APP_SECRET = "meta-app-secret"

# Status webhooks, shaped as Meta's "Status messages webhook reference" (developers.facebook.com/documentation/
# business-messaging/whatsapp/webhooks/reference/messages/status) shows them.
META_STATUS_SENT = {
    "object": "whatsapp_business_account",
    "entry": [
        {
            "id": "102290129340398",
            "changes": [
                {
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                        "statuses": [
                            {
                                "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjcwMjZFNDk0ODJDMDQA",
                                "status": "sent",
                                "timestamp": "1750263773",
                                "recipient_id": "16505551234",
                                "pricing": {"billable": True, "pricing_model": "PMP", "category": "marketing"},
                            }
                        ],
                    },
                    "field": "messages",
                }
            ],
        }
    ],
}
META_FAILED_ITEM = {
    "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjcwMjZFNDk0ODJDMDQA",
    "status": "failed",
    "timestamp": "1750263780",
    "recipient_id": "16505551234",
    "errors": [
        {
            "code": 131047,
            "title": "Re-engagement message",
            "message": "Re-engagement message",
            "error_data": {
                "details": "Message failed to send because more than 24 hours have passed since the customer "
                "last replied to this number."
            },
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
        }
    ],
}


def _meta_value(payload: dict) -> dict:
    return payload["entry"][0]["changes"][0]["value"]


def _meta_with(value: dict) -> dict:
    """Meta's envelope (same WABA and number as above) around `value`'s statuses or messages."""
    payload = copy.deepcopy(META_STATUS_SENT)
    envelope = {k: v for k, v in _meta_value(payload).items() if k != "statuses"}
    payload["entry"][0]["changes"][0]["value"] = {**envelope, **value}
    return payload


def _spec_example(name: str) -> dict:
    """The request examples of `POST /whatsapp/webhooks` in Meta's official OpenAPI (whatsapp_cloud_api_v23.0.yaml,
    facebook/openapi), copied here so the tests do not depend on the spec file being present."""
    return copy.deepcopy(META_SPEC_EXAMPLES[name])


META_SPEC_EXAMPLES = {
    "Text Message with Context": _meta_with(
        {
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
            "messages": [
                {
                    "context": {
                        "from": "15550783881",
                        "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGA9wcm9kdWN0X2lucXVpcnkA",
                        "referred_product": {"catalog_id": "194836987003835", "product_retailer_id": "di9ozbzfi4"},
                    },
                    "from": "16505551234",
                    "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTA2NTUwRkNEMDdFQjJCRUU0NQA=",
                    "timestamp": "1750016800",
                    "text": {"body": "Is this still available?"},
                    "type": "text",
                }
            ],
        }
    ),
    "Image Message": _meta_with(
        {
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
            "messages": [
                {
                    "from": "16505551234",
                    "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
                    "timestamp": "1744344496",
                    "type": "image",
                    "image": {
                        "caption": "Taj Mahal",
                        "mime_type": "image/jpeg",
                        "sha256": "SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=",
                        "id": "1003383421387256",
                    },
                }
            ],
        }
    ),
    "Button Message": _meta_with(
        {
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
            "messages": [
                {
                    "context": {
                        "from": "15550783881",
                        "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJFNjk2OTMwNEZCQjhGMzUyQUYA",
                    },
                    "from": "16505551234",
                    "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUU0M0MxQzQzMUJCMTMwNUZFOQA=",
                    "timestamp": "1750091045",
                    "type": "button",
                    "button": {"payload": "Unsubscribe", "text": "Unsubscribe"},
                }
            ],
        }
    ),
    "Interactive List Reply Message": _meta_with(
        {
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
            "messages": [
                {
                    "context": {
                        "from": "15550783881",
                        "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJGMzEyNzhENTZDMzNGODlDRDgA",
                    },
                    "from": "16505551234",
                    "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUJDQ0NDM0FEODY4ODkzOTc5RgA=",
                    "timestamp": "1749854575",
                    "type": "interactive",
                    "interactive": {
                        "type": "list_reply",
                        "list_reply": {
                            "id": "priority_express",
                            "title": "Priority Mail Express",
                            "description": "Next Day to 2 Days",
                        },
                    },
                }
            ],
        }
    ),
    "Interactive Button Reply Message": _meta_with(
        {
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
            "messages": [
                {
                    "context": {
                        "from": "15550783881",
                        "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MEM2RUJFNkI0RENGQTVDRjUA",
                    },
                    "from": "16505551234",
                    "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTZBQzg0MzQ4QjRCM0NGNkVGOAA=",
                    "timestamp": "1750025136",
                    "type": "interactive",
                    "interactive": {"type": "button_reply", "button_reply": {"id": "cancel-button", "title": "Cancel"}},
                }
            ],
        }
    ),
    "Reaction Message": _meta_with(
        {
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
            "messages": [
                {
                    "from": "16505551234",
                    "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
                    "timestamp": "1749419544",
                    "type": "reaction",
                    "reaction": {
                        "message_id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0RTJEOTc2ODVERUY5RDlGNkYA",
                        "emoji": "\U0001f44d",
                    },
                }
            ],
        }
    ),
    "System Message": _meta_with(
        {
            "messages": [
                {
                    "from": "16505551234",
                    "id": "wamid.HBgLMTk4MzU1NTE5NzQVAgASGAoxMTgyMDg2MjY3AA==",
                    "timestamp": "1750269342",
                    "system": {
                        "body": "User Sheena Nelson changed from 16505551234 to 12195555358",
                        "wa_id": "12195555358",
                        "type": "user_changed_number",
                    },
                    "type": "system",
                }
            ]
        }
    ),
}


def test_meta_subscription_handshake():
    assert meta_inbound.verify_subscription("verify-me", "subscribe", "verify-me", "1158201444") == "1158201444"
    for mode, token in (("subscribe", "wrong"), ("subscribe", None), ("unsubscribe", "verify-me"), (None, None)):
        with pytest.raises(WebhookRejected) as refused:
            meta_inbound.verify_subscription("verify-me", mode, token, "1158201444")
        assert refused.value.status == 403
    with pytest.raises(WebhookRejected, match="not configured: set META_WEBHOOK_VERIFY_TOKEN") as refused:
        meta_inbound.verify_subscription("", "subscribe", "", "1158201444")
    assert refused.value.status == 403


def test_meta_signature_covers_the_raw_utf8_bytes():
    payload = fake.meta_reply("wamid.X", "5511999998888", "Olá, ção 🙂", profile_name="Conceição")
    headers, raw = fake.meta_signed(APP_SECRET, payload)
    assert "Olá, ção 🙂".encode() in raw  # really sent as UTF-8, not \\u escapes
    meta_inbound.verify(APP_SECRET, raw, headers["X-Hub-Signature-256"])
    meta_inbound.verify(APP_SECRET, raw, headers["X-Hub-Signature-256"].upper().replace("SHA256=", "sha256="))

    reserialised = json.dumps(json.loads(raw), ensure_ascii=True, separators=(",", ":")).encode()
    assert json.loads(reserialised) == json.loads(raw)
    with pytest.raises(WebhookRejected) as refused:
        meta_inbound.verify(APP_SECRET, reserialised, headers["X-Hub-Signature-256"])
    assert refused.value.status == 403


@pytest.mark.parametrize(
    "given, status",
    [
        (None, 401),
        ("", 401),
        ("sha256=" + "0" * 64, 403),
        ("sha1=0a1b2c", 403),
        ("not a signature", 403),
        ("sha256=zz€", 403),
    ],
)
def test_meta_missing_signature_is_401_wrong_or_ill_formed_is_403(given, status):
    with pytest.raises(WebhookRejected) as refused:
        meta_inbound.verify(APP_SECRET, b'{"object":"whatsapp_business_account","entry":[]}', given)
    assert refused.value.status == status


def test_meta_unconfigured_app_secret_is_403():
    headers, raw = fake.meta_signed("", fake.meta_status("wamid.X", "sent", 1750263773))
    with pytest.raises(WebhookRejected, match="meta webhooks are not configured: set META_APP_SECRET") as refused:
        meta_inbound.verify("", raw, headers["X-Hub-Signature-256"])
    assert refused.value.status == 403


@pytest.mark.parametrize(
    "raw, ours", [("sent", "sent"), ("delivered", "delivered"), ("read", "read"), ("played", "read")]
)
def test_meta_status_map(raw, ours):
    payload = copy.deepcopy(META_STATUS_SENT)
    _meta_value(payload)["statuses"][0]["status"] = raw
    [report] = meta_inbound.parse(payload)
    wamid = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjcwMjZFNDk0ODJDMDQA"
    assert report == StatusReport(
        provider="meta",
        provider_message_id=wamid,
        status=ours,
        event_key=f"{wamid}:{raw}",
        at=1750263773.0,
        provider_status=raw,
    )


def test_meta_failed_status_carries_the_error():
    [report] = meta_inbound.parse(_meta_with({"statuses": [META_FAILED_ITEM]}))
    assert (report.status, report.error_code, report.at) == ("failed", "131047", 1750263780.0)
    assert report.error_message == (
        "Re-engagement message: Message failed to send because more than 24 hours have passed since the "
        "customer last replied to this number."
    )
    assert report.event_key == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjcwMjZFNDk0ODJDMDQA:failed"


def test_meta_batches_several_entries_and_skips_other_fields_and_statuses():
    payload = _meta_with({"statuses": [META_FAILED_ITEM, {**META_FAILED_ITEM, "status": "deleted", "errors": []}]})
    payload["entry"][0]["changes"].insert(
        0, {"field": "message_template_status_update", "value": {"event": "APPROVED", "message_template_id": 1}}
    )
    payload["entry"].append(copy.deepcopy(META_STATUS_SENT["entry"][0]))
    assert [r.status for r in meta_inbound.parse(payload)] == ["failed", "sent"]


def test_meta_reply_with_context():
    [message] = meta_inbound.parse(_spec_example("Text Message with Context"))
    assert message == IncomingMessage(
        provider="meta",
        provider_message_id="wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTA2NTUwRkNEMDdFQjJCRUU0NQA=",
        from_phone="+16505551234",
        to="106540352242922",
        event_key="in:wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTA2NTUwRkNEMDdFQjJCRUU0NQA=",
        text="Is this still available?",
        in_reply_to="wamid.HBgLMTY1MDM4Nzk0MzkVAgARGA9wcm9kdWN0X2lucXVpcnkA",
        profile_name="Sheena Nelson",
        at=1750016800.0,
    )


def test_meta_reply_with_media_gives_the_media_id():
    [message] = meta_inbound.parse(_spec_example("Image Message"))
    assert (message.text, message.media_url, message.media_kind, message.media_mimetype) == (
        "Taj Mahal",
        "1003383421387256",
        "image",
        "image/jpeg",
    )
    assert message.in_reply_to == ""


@pytest.mark.parametrize(
    "example, text, in_reply_to",
    [
        ("Button Message", "Unsubscribe", "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJFNjk2OTMwNEZCQjhGMzUyQUYA"),
        (
            "Interactive List Reply Message",
            "Priority Mail Express",
            "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJGMzEyNzhENTZDMzNGODlDRDgA",
        ),
        ("Interactive Button Reply Message", "Cancel", "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MEM2RUJFNkI0RENGQTVDRjUA"),
        ("Reaction Message", "\U0001f44d", "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0RTJEOTc2ODVERUY5RDlGNkYA"),
    ],
)
def test_meta_buttons_lists_and_reactions(example, text, in_reply_to):
    [message] = meta_inbound.parse(_spec_example(example))
    assert (message.text, message.in_reply_to, message.media_kind) == (text, in_reply_to, "")


def test_meta_system_messages_and_withdrawn_reactions_are_skipped():
    assert meta_inbound.parse(_spec_example("System Message")) == []
    payload = _spec_example("Reaction Message")
    _meta_value(payload)["messages"][0]["reaction"].pop("emoji")
    assert meta_inbound.parse(payload) == []


def test_meta_fake_builders_round_trip():
    [report] = meta_inbound.parse(fake.meta_status("wamid.A", "failed", 1750263780, error_code=131026))
    assert (report.status, report.error_code, report.error_message) == (
        "failed",
        "131026",
        "Message undeliverable: Message Undeliverable.",
    )
    [message] = meta_inbound.parse(fake.meta_reply("wamid.B", "5511999998888", "Sim", in_reply_to="wamid.A"))
    assert (message.from_phone, message.to, message.in_reply_to) == ("+5511999998888", "106540352242922", "wamid.A")


@pytest.mark.parametrize(
    "payload, missing",
    [
        ([], "entry"),
        ({"object": "whatsapp_business_account"}, "entry"),
        ({"object": "whatsapp_business_account", "entry": {}}, "entry"),
        ({"entry": [{"id": "1"}]}, "changes"),
        ({"entry": [{"changes": [{"field": "messages", "value": None}]}]}, "value"),
        (_meta_with({"statuses": [{"status": "sent"}]}), "id"),
        (_meta_with({"statuses": {"id": "x"}}), "statuses"),
        (_meta_with({"messages": [{"type": "text", "text": {"body": "oi"}}]}), "id"),
    ],
)
def test_meta_malformed_bodies(payload, missing):
    with pytest.raises(WebhookMalformed, match=missing):
        meta_inbound.parse(payload)


# ==== Evolution =======================================================================================

EVOLUTION_SECRET = "evo-shared-secret"

# A v2 messages.update as Evolution 2.x sends it (data built in whatsapp.baileys.service.ts
# `messageHandle['messages.update']`; envelope from channel.service.ts `sendDataWebhook`).
EVOLUTION_UPDATE = {
    "event": "messages.update",
    "instance": "loja-1",
    "data": {
        "keyId": "BAE594145F4C59B4",
        "remoteJid": "5511999998888@s.whatsapp.net",
        "fromMe": True,
        "participant": "5511999998888@s.whatsapp.net",
        "status": "DELIVERY_ACK",
        "instanceId": "af6c5b7c-ee27-4f94-9ea8-192393746ddd",
        "messageId": "cm3q9x0ab000108l4h1c2d3e4",
    },
    "destination": "https://dispatcher.example.com/webhooks/evolution",
    "date_time": "2024-11-20T07:15:42.123Z",
    "sender": "5564999990000@s.whatsapp.net",
    "server_url": "https://evolution.example.com",
    "apikey": "B6D711FCDE4D4FD5936544120E713976",
}

# A messages.upsert of a contact quoting one of our messages with a picture (Baileys' WAMessage as Evolution
# forwards it: message + top-level contextInfo, messageTimestamp in seconds).
EVOLUTION_IMAGE_REPLY = {
    "event": "messages.upsert",
    "instance": "loja-1",
    "data": {
        "key": {"remoteJid": "5511999998888@s.whatsapp.net", "fromMe": False, "id": "3EB0C431C26A1916E07A"},
        "pushName": "Conceição",
        "status": "DELIVERY_ACK",
        "message": {
            "imageMessage": {
                "url": "https://mmg.whatsapp.net/o1/v/t62.7118-24/f1/m232/up-oil-image-abc.enc?ccb=9-4&mms3=true",
                "mimetype": "image/jpeg",
                "caption": "Olha o comprovante",
                "fileSha256": "n7n+6o7y0UqJz5fFZkCqYzS4GpZ5bS0oX2XQz3qk7hY=",
                "fileLength": "45213",
                "height": 1280,
                "width": 960,
                "mediaKey": "Zf0kX5oXb2Yk8kS2n2m1j9v6S3hD0mB7Q1xS8aW0o1E=",
                "directPath": "/o1/v/t62.7118-24/f1/m232/up-oil-image-abc.enc?ccb=9-4",
                "mediaKeyTimestamp": "1732097742",
                "contextInfo": {
                    "stanzaId": "BAE594145F4C59B4",
                    "participant": "5564999990000@s.whatsapp.net",
                    "quotedMessage": {"conversation": "Seu pedido saiu para entrega"},
                },
            },
            "messageContextInfo": {"deviceListMetadataVersion": 2},
        },
        "contextInfo": {"stanzaId": "BAE594145F4C59B4", "participant": "5564999990000@s.whatsapp.net"},
        "messageType": "imageMessage",
        "messageTimestamp": 1732097745,
        "instanceId": "af6c5b7c-ee27-4f94-9ea8-192393746ddd",
        "source": "android",
    },
    "destination": "https://dispatcher.example.com/webhooks/evolution",
    "date_time": "2024-11-20T07:15:45.501Z",
    "sender": "5564999990000@s.whatsapp.net",
    "server_url": "https://evolution.example.com",
    "apikey": None,
}


def _evolution(event: str = "messages.update", **data) -> dict:
    base = EVOLUTION_UPDATE if event.lower().replace("_", ".") == "messages.update" else EVOLUTION_IMAGE_REPLY
    payload = copy.deepcopy(base)
    payload["event"] = event
    payload["data"] = {**payload["data"], **data}
    return payload


def test_evolution_verify():
    evolution_inbound.verify(EVOLUTION_SECRET, EVOLUTION_SECRET)
    for given, status in ((None, 401), ("", 401), ("evo-shared-secreT", 403), ("Olá ção", 403)):
        with pytest.raises(WebhookRejected) as refused:
            evolution_inbound.verify(EVOLUTION_SECRET, given)
        assert refused.value.status == status
    with pytest.raises(WebhookRejected) as refused:
        evolution_inbound.verify("", EVOLUTION_SECRET)
    assert refused.value.status == 403
    assert str(refused.value) == "evolution webhooks are not configured: set EVOLUTION_WEBHOOK_SECRET"


@pytest.mark.parametrize(
    "word, ours",
    [
        ("SERVER_ACK", "sent"),
        ("DELIVERY_ACK", "delivered"),
        ("READ", "read"),
        ("PLAYED", "read"),
        ("ERROR", "failed"),
        # the WHATSAPP-BUSINESS integration: Meta's words upper-cased
        ("SENT", "sent"),
        ("DELIVERED", "delivered"),
        ("FAILED", "failed"),
    ],
)
def test_evolution_status_map(word, ours):
    [report] = evolution_inbound.parse(_evolution(status=word))
    assert report == StatusReport(
        provider="evolution",
        provider_message_id="BAE594145F4C59B4",  # keyId, not Evolution's own messageId
        status=ours,
        event_key=f"BAE594145F4C59B4:{word}",
        at=None,  # date_time is the server's local time mislabelled Z: not trusted
        error_message=f"Evolution reported {word}" if ours == "failed" else "",
        provider_status=word,
    )


@pytest.mark.parametrize("word", ["PENDING", "DELETED", "SOMETHING_NEW"])
def test_evolution_statuses_without_news_are_skipped(word):
    assert evolution_inbound.parse(_evolution(status=word)) == []


@pytest.mark.parametrize(
    "number, ours, word",
    [
        (0, "failed", "ERROR"),
        (2, "sent", "SERVER_ACK"),
        (3, "delivered", "DELIVERY_ACK"),
        (4, "read", "READ"),
        (5, "read", "PLAYED"),
        ("3", "delivered", "DELIVERY_ACK"),
    ],
)
def test_evolution_baileys_numeric_shape(number, ours, word):
    # Baileys' own event, as older Evolution versions forwarded it
    payload = {
        "event": "MESSAGES_UPDATE",
        "instance": "loja-1",
        "data": [
            {
                "key": {"remoteJid": "5511999998888@s.whatsapp.net", "fromMe": True, "id": "BAE594145F4C59B4"},
                "update": {"status": number},
            }
        ],
    }
    [report] = evolution_inbound.parse(payload)
    assert (report.status, report.provider_status, report.event_key) == (ours, word, f"BAE594145F4C59B4:{word}")
    payload["data"][0]["update"] = {"status": 1}
    assert evolution_inbound.parse(payload) == []
    payload["data"][0]["update"] = {"message": {"editedMessage": {}}}  # an update without a status
    assert evolution_inbound.parse(payload) == []


def test_evolution_v1_shape_with_its_own_time():
    # v1 spread the key into data and stamped Date.now() in milliseconds
    payload = {
        "event": "messages.update",
        "instance": "loja-1",
        "data": {
            "id": "BAE594145F4C59B4",
            "remoteJid": "5511999998888@s.whatsapp.net",
            "fromMe": True,
            "status": "READ",
            "datetime": 1700000000123,
            "owner": "loja-1",
        },
    }
    [report] = evolution_inbound.parse(payload)
    assert (report.provider_message_id, report.status, report.at) == ("BAE594145F4C59B4", "read", 1700000000.123)


def test_evolution_batches_and_skips_statuses_of_messages_we_received():
    payload = _evolution("MESSAGES_UPDATE")
    payload["data"] = [
        payload["data"],
        {**payload["data"], "keyId": "3EB0C431C26A1916E07A", "fromMe": False, "status": "READ"},
        {**payload["data"], "keyId": "BAE5AAAA", "status": "READ"},
    ]
    assert [(r.provider_message_id, r.status) for r in evolution_inbound.parse(payload)] == [
        ("BAE594145F4C59B4", "delivered"),
        ("BAE5AAAA", "read"),
    ]


def test_evolution_reply_with_media_and_quote():
    [message] = evolution_inbound.parse(EVOLUTION_IMAGE_REPLY)
    assert message == IncomingMessage(
        provider="evolution",
        provider_message_id="3EB0C431C26A1916E07A",
        from_phone="+5511999998888",
        to="loja-1",
        event_key="in:3EB0C431C26A1916E07A",
        text="Olha o comprovante",
        media_url=EVOLUTION_IMAGE_REPLY["data"]["message"]["imageMessage"]["url"],
        media_kind="image",
        media_mimetype="image/jpeg",
        in_reply_to="BAE594145F4C59B4",
        profile_name="Conceição",
        at=1732097745.0,
    )


def test_evolution_reply_text_shapes():
    conversation = {"conversation": "Pode me ligar?", "messageContextInfo": {}}
    [message] = evolution_inbound.parse(_evolution("messages.upsert", message=conversation, contextInfo=None))
    assert (message.text, message.media_kind, message.in_reply_to) == ("Pode me ligar?", "", "")

    quoted = {"extendedTextMessage": {"text": "Sim, confirmo", "contextInfo": {"stanzaId": "BAE5111"}}}
    [message] = evolution_inbound.parse(_evolution("MESSAGES_UPSERT", message=quoted, contextInfo=None))
    assert (message.text, message.in_reply_to) == ("Sim, confirmo", "BAE5111")

    # versions that fold extendedTextMessage into conversation keep the quote only at the top of data
    folded = {"conversation": "Sim, confirmo"}
    [message] = evolution_inbound.parse(
        _evolution("messages.upsert", message=folded, contextInfo={"stanzaId": "BAE5222"})
    )
    assert (message.text, message.in_reply_to) == ("Sim, confirmo", "BAE5222")

    # a document wrapped for disappearing messages
    document = {
        "ephemeralMessage": {
            "message": {"documentMessage": {"url": "https://mmg.whatsapp.net/d.enc", "mimetype": "application/pdf"}}
        }
    }
    [message] = evolution_inbound.parse(_evolution("messages.upsert", message=document, contextInfo=None))
    assert (message.media_kind, message.media_mimetype, message.text) == ("document", "application/pdf", "")


def test_evolution_reply_through_the_whatsapp_business_integration():
    # whatsapp.business.service.ts: Meta's message re-dressed, contextInfo beside the content, Meta media id
    data = {
        "key": {
            "id": "wamid.HBgNNTUxMTk5OTk5ODg4OBUCABIYFDNBMDk",
            "remoteJid": "5511999998888@s.whatsapp.net",
            "fromMe": False,
        },
        "pushName": "Maria",
        "message": {
            "imageMessage": {"id": "1003383421387256", "mime_type": "image/jpeg", "caption": "foto"},
            "contextInfo": {"stanzaId": "wamid.HBgNNTUxMTk5OTk5ODg4OBUCABEYEjk"},
        },
        "messageType": "imageMessage",
        "messageTimestamp": 1744344496,
        "source": "unknown",
    }
    [message] = evolution_inbound.parse({"event": "messages.upsert", "instance": "oficial", "data": data})
    assert (message.media_url, message.media_mimetype, message.in_reply_to, message.to) == (
        "1003383421387256",
        "image/jpeg",
        "wamid.HBgNNTUxMTk5OTk5ODg4OBUCABEYEjk",
        "oficial",
    )


def test_evolution_lid_senders_use_the_phone_jid_when_given():
    key = {"remoteJid": "175105850253361@lid", "remoteJidAlt": "5511999998888@s.whatsapp.net", "fromMe": False}
    [message] = evolution_inbound.parse(_evolution("messages.upsert", key={**key, "id": "3EB0AA"}))
    assert message.from_phone == "+5511999998888"
    [message] = evolution_inbound.parse(_evolution("messages.upsert", key={"remoteJid": "1751@lid", "id": "3EB0AB"}))
    assert message.from_phone == ""


@pytest.mark.parametrize(
    "change",
    [
        {"key": {"remoteJid": "5511999998888@s.whatsapp.net", "fromMe": True, "id": "BAE5ECHO"}},
        {"key": {"remoteJid": "120363041967849074@g.us", "fromMe": False, "id": "3EB0GROUP"}},
        {"key": {"remoteJid": "status@broadcast", "fromMe": False, "id": "3EB0STATUS"}},
        {"message": {"protocolMessage": {"type": 0, "key": {"id": "3EB0C431C26A1916E07A"}}}},
        {"message": {"reactionMessage": {"key": {"id": "BAE594145F4C59B4"}, "text": ""}}},
        {"message": None},
    ],
)
def test_evolution_upserts_that_are_not_replies_are_skipped(change):
    assert evolution_inbound.parse(_evolution("messages.upsert", **change)) == []


def test_evolution_reaction_answers_our_message():
    reaction = {"reactionMessage": {"key": {"id": "BAE594145F4C59B4", "fromMe": True}, "text": "👍"}}
    [message] = evolution_inbound.parse(_evolution("messages.upsert", message=reaction, contextInfo=None))
    assert (message.text, message.in_reply_to) == ("👍", "BAE594145F4C59B4")


@pytest.mark.parametrize(
    "payload",
    [
        {"event": "QRCODE_UPDATED", "instance": "loja-1", "data": {"qrcode": {"instance": "loja-1"}}},
        {"event": "send.message", "instance": "loja-1", "data": {"key": {"fromMe": True, "id": "BAE5"}}},
    ],
)
def test_evolution_other_events_are_skipped(payload):
    assert evolution_inbound.parse(payload) == []


@pytest.mark.parametrize(
    "payload, missing",
    [
        ([{"event": "messages.update"}], "JSON object"),
        ({"instance": "loja-1", "data": {}}, "event"),
        ({"event": "messages.update", "instance": "loja-1"}, "data"),
        ({"event": "messages.update", "data": ["x"]}, "data"),
        ({"event": "messages.update", "data": {"status": "READ"}}, "keyId"),
        ({"event": "messages.upsert", "data": {"key": {"id": "1", "remoteJid": "1@s.whatsapp.net"}}}, "instance"),
        ({"event": "messages.upsert", "instance": "loja-1", "data": {"message": {}}}, "key"),
    ],
)
def test_evolution_malformed_bodies(payload, missing):
    with pytest.raises(WebhookMalformed, match=missing):
        evolution_inbound.parse(payload)


def test_evolution_fake_builders_round_trip():
    [report] = evolution_inbound.parse(fake.evolution_status("loja-1", "BAE5F00D", "READ"))
    assert (report.provider_message_id, report.status) == ("BAE5F00D", "read")
    [message] = evolution_inbound.parse(fake.evolution_reply("loja-1", "5511999998888", "Oi", in_reply_to="BAE5F00D"))
    assert (message.from_phone, message.to, message.text, message.in_reply_to) == (
        "+5511999998888",
        "loja-1",
        "Oi",
        "BAE5F00D",
    )
    [message] = evolution_inbound.parse(fake.evolution_reply("loja-1", "5511999998888", "Oi"))
    assert message.in_reply_to == ""


@pytest.mark.parametrize(
    ("state", "connected"),
    [("close", False), ("refused", False), ("open", True)],
)
def test_an_evolution_connection_update_says_whether_the_instance_can_send(state, connected):
    (event,) = evolution_inbound.parse(fake.evolution_connection("loja-1", state, 401))
    assert event == SenderState("evolution", "loja-1", connected, state, "401")


def test_an_evolution_instance_still_connecting_changes_nothing_and_a_bare_one_is_malformed():
    assert evolution_inbound.parse(fake.evolution_connection("loja-1", "connecting")) == []
    with pytest.raises(WebhookMalformed):
        evolution_inbound.parse({"event": "connection.update", "data": {}})
