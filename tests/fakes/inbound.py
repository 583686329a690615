"""Genuine provider webhook requests, built as the providers build them, for tests and benches to POST.

Bodies follow the shapes in Evolution's source, Twilio's webhook docs and Meta's webhook reference (see
tests/test_inbound_parsing.py for the verbatim examples). Signatures are computed here independently of
`providers.*_inbound`, so a test that posts them checks our verification against a second implementation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

EVOLUTION_INSTANCE_ID = "af6c5b7c-ee27-4f94-9ea8-192393746ddd"
TWILIO_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
TWILIO_FROM = "+14155238886"
META_WABA_ID = "102290129340398"
META_PHONE_NUMBER_ID = "106540352242922"
META_DISPLAY_NUMBER = "15550783881"
CONTACT_DIGITS = "5511999998888"


# ---- Evolution API v2 --------------------------------------------------------------------------------


def _evolution_envelope(event: str, instance: str, data: dict) -> dict:
    return {
        "event": event,
        "instance": instance,
        "data": data,
        "destination": "https://dispatcher.example.com/webhooks/evolution",
        "date_time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "sender": "5564999990000@s.whatsapp.net",
        "server_url": "https://evolution.example.com",
        "apikey": None,
    }


def evolution_connection(instance: str, state: str, status_reason: int | None = None) -> dict:
    """A v2 `connection.update`: the instance's connection to WhatsApp is now `state` (open, close, refused...)."""
    data: dict = {"instance": instance, "state": state}
    if status_reason is not None:
        data["statusReason"] = status_reason
    return _evolution_envelope("connection.update", instance, data)


def evolution_status(instance: str, key_id: str, status_word: str, to_digits: str = CONTACT_DIGITS) -> dict:
    """A v2 `messages.update` for a message we sent: `status_word` as Evolution writes it (DELIVERY_ACK, READ...)."""
    data = {
        "keyId": key_id,
        "remoteJid": f"{to_digits}@s.whatsapp.net",
        "fromMe": True,
        "participant": f"{to_digits}@s.whatsapp.net",
        "status": status_word,
        "instanceId": EVOLUTION_INSTANCE_ID,
    }
    return _evolution_envelope("messages.update", instance, data)


def evolution_reply(
    instance: str, from_digits: str, text: str, in_reply_to: str = "", message_id: str = "", push_name: str = "Maria"
) -> dict:
    """A `messages.upsert` of a contact's text; quoting one of ours (`in_reply_to` = its key.id) makes it an
    extendedTextMessage with contextInfo, as WhatsApp does."""
    if in_reply_to:
        content = {
            "extendedTextMessage": {
                "text": text,
                "contextInfo": {"stanzaId": in_reply_to, "participant": "5564999990000@s.whatsapp.net"},
            }
        }
        kind = "extendedTextMessage"
    else:
        content, kind = {"conversation": text}, "conversation"
    data = {
        "key": {
            "remoteJid": f"{from_digits}@s.whatsapp.net",
            "fromMe": False,
            "id": message_id or uuid.uuid4().hex[:20].upper(),
        },
        "pushName": push_name,
        "status": "DELIVERY_ACK",
        "message": {**content, "messageContextInfo": {"deviceListMetadataVersion": 2}},
        "messageType": kind,
        "messageTimestamp": int(time.time()),
        "instanceId": EVOLUTION_INSTANCE_ID,
        "source": "android",
    }
    return _evolution_envelope("messages.upsert", instance, data)


# ---- Twilio ------------------------------------------------------------------------------------------


def twilio_status(
    message_sid: str, status: str, error_code: str = "", to: str = "+" + CONTACT_DIGITS, error_message: str = ""
) -> dict[str, str]:
    """A WhatsApp StatusCallback post (`status` as Twilio writes it: sent, delivered, read, undelivered...)."""
    params = {
        "ChannelPrefix": "whatsapp",
        "ApiVersion": "2010-04-01",
        "MessageStatus": status,
        "SmsSid": message_sid,
        "SmsStatus": status,
        "ChannelInstallSid": "XE" + "0" * 32,
        "To": f"whatsapp:{to}",
        "From": f"whatsapp:{TWILIO_FROM}",
        "MessageSid": message_sid,
        "AccountSid": TWILIO_ACCOUNT_SID,
        "ChannelToAddress": to,
    }
    if status == "read":
        params["EventType"] = "READ"
    if error_code:
        params["ErrorCode"] = error_code
        params["ChannelStatusMessage"] = f"Twilio error {error_code}"
    if error_message:
        params["ErrorMessage"] = error_message
    return params


def twilio_reply(
    from_phone: str, body: str, in_reply_to: str = "", message_sid: str = "", to: str = TWILIO_FROM
) -> dict[str, str]:
    """An incoming WhatsApp message post; `in_reply_to` is the SM... sid of the message it quotes."""
    sid = message_sid or "SM" + uuid.uuid4().hex
    params = {
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ProfileName": "Maria",
        "MessageType": "text",
        "SmsSid": sid,
        "WaId": from_phone.lstrip("+"),
        "SmsStatus": "received",
        "Body": body,
        "To": f"whatsapp:{to}",
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "MessageSid": sid,
        "AccountSid": TWILIO_ACCOUNT_SID,
        "From": f"whatsapp:{from_phone}",
        "ApiVersion": "2010-04-01",
    }
    if in_reply_to:
        params["OriginalRepliedMessageSender"] = f"whatsapp:{to}"
        params["OriginalRepliedMessageSid"] = in_reply_to
    return params


def twilio_signed(auth_token: str, url: str, params: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Headers (X-Twilio-Signature) and form for POSTing `params` to exactly `url`, query string included."""
    message = url + "".join(name + value for name, value in sorted(params.items()))
    digest = hmac.new(auth_token.encode(), message.encode(), hashlib.sha1).digest()
    return {"X-Twilio-Signature": base64.b64encode(digest).decode()}, params


# ---- Meta Cloud API ----------------------------------------------------------------------------------


def _meta_envelope(value: dict) -> dict:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": META_DISPLAY_NUMBER, "phone_number_id": META_PHONE_NUMBER_ID},
        **value,
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": META_WABA_ID, "changes": [{"value": value, "field": "messages"}]}],
    }


def meta_status(
    wamid: str,
    status: str,
    timestamp: int | str,
    error_code: int | None = None,
    recipient: str = CONTACT_DIGITS,
    details: str = "Message Undeliverable.",
) -> dict:
    """A statuses webhook for one of our messages; with `error_code` a failed one carrying errors[0]."""
    item = {"id": wamid, "status": status, "timestamp": str(timestamp), "recipient_id": recipient}
    if status in ("sent", "delivered"):
        item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "marketing"}
    if error_code is not None:
        item["errors"] = [
            {
                "code": error_code,
                "title": "Message undeliverable",
                "message": "Message undeliverable",
                "error_data": {"details": details},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
            }
        ]
    return _meta_envelope({"statuses": [item]})


def meta_reply(
    wamid: str,
    from_digits: str,
    text: str,
    in_reply_to: str = "",
    timestamp: int | None = None,
    profile_name: str = "Maria",
) -> dict:
    """A messages webhook with a contact's text; `in_reply_to` (a wamid of ours) adds the `context` block."""
    message = {
        "from": from_digits,
        "id": wamid,
        "timestamp": str(timestamp or int(time.time())),
        "type": "text",
        "text": {"body": text},
    }
    if in_reply_to:
        message["context"] = {"from": META_DISPLAY_NUMBER, "id": in_reply_to}
    contacts = [{"profile": {"name": profile_name}, "wa_id": from_digits}]
    return _meta_envelope({"contacts": contacts, "messages": [message]})


def meta_signed(app_secret: str, payload: dict) -> tuple[dict[str, str], bytes]:
    """Headers and the exact body bytes to POST: UTF-8 JSON with non-ASCII kept as is, signed over those bytes."""
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    signature = hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={signature}", "Content-Type": "application/json"}, raw
