"""Contacts' rules: who must not be written to, when free text may go, how many messages a contact gets a day.

What gets a number banned is not speed alone: writing to people who asked us to stop, free text where WhatsApp
allows only templates, the same person messaged five times by five campaigns. Each account (dispatcher/accounts.py)
keeps its own opt-out list; a number enters it by a reply that is an opt-out keyword, by the provider's word
(Meta's marketing opt-out), or by POST /v1/opt-outs, and leaves it the same ways.

Every rule is checked where a message is created, in the create script itself (lua/lib/contacts.lua), so it costs
the request no round trip and the daily cap counts each new message once, atomically, whatever the number of web
processes. The rules are checked again at the claim, because time passes while a message waits: a contact who
opted out since is canceled (reason `opted_out`), never sent; a window that closed since sends the fallback
template, or fails `outside_session_window` without calling the provider.

The 24-hour customer-service window is WhatsApp's (dispatcher/provider_registry.py `session_window`): a contact's
reply to one of our senders opens it with that sender for 24 hours. We learn of replies only from the providers'
webhooks, so by default it is enforced only where the provider's webhook is configured (SESSION_WINDOW).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis

from dispatcher import redis_keys, scripts
from dispatcher.senders import sender_id
from dispatcher.settings import Settings
from dispatcher.times import iso
from providers.inbound import IncomingMessage, PreferenceChange

DAY = 86400
WINDOW_SECONDS = 86400
OPT_OUT, OPT_IN = "opt_out", "opt_in"

# A refusal's code → its text and the request field it names. The opted-out text is what reach-town shows.
REFUSALS = {
    "opted_out": ("Recipient has opted out", "recipient_phone"),
    "outside_session_window": (
        "The recipient has not written to this sender in the last 24 hours, so WhatsApp allows only a template: "
        "send a template, or give a fallback_template",
        "template",
    ),
    "contact_cap_reached": (
        "This recipient has already had {cap} messages from this account today (CONTACT_DAILY_CAP); "
        "more can go after 00:00 UTC",
        "recipient_phone",
    ),
}


class ContactRefused(Exception):
    """A contact's rule refused a new message: answered 422 with the code and the field it names."""

    def __init__(self, code: str, cap: int = 0):
        text, field = REFUSALS[code]
        super().__init__(text.format(cap=cap))
        self.code = code
        self.field = field

    @property
    def body(self) -> dict:
        return {"error": str(self), "code": self.code, "field": self.field}


def normalized(text: str) -> str:
    """A reply's text as keywords are compared: trimmed, spaces collapsed, upper case, accents dropped
    ("  não quero  mais " → "NAO QUERO MAIS")."""
    decomposed = unicodedata.normalize("NFKD", " ".join(text.split()))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()


def contact_chain(phone: str, key: str) -> str:
    """The callback chain of an account's contact events that no reply carries (the API's, a provider's
    preference): named by a keyed hash of the number, never the number (see status_reports.reply_chain)."""
    return "contact:" + hmac.new(key.encode(), phone.encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class OptOut:
    """An opted-out number, since when and how (source: reply, provider or api)."""

    recipient_phone: str
    opted_out_at: str
    source: str
    keyword: str | None = None
    provider: str | None = None
    sender: str | None = None


class Contacts:
    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        clock: Callable[[], float],
        chain_key: str,
    ):
        self.redis = client
        self.settings = settings.contacts
        self.window_providers = settings.session_window_providers
        self.accounts = sorted({key.account for key in settings.api_keys})
        self.default_url = settings.callbacks.status_webhook_url
        self.clock = clock
        self.chain_key = chain_key
        self.opt_out_words = {normalized(word) for word in self.settings.opt_out_keywords}
        self.opt_in_words = {normalized(word) for word in self.settings.opt_in_keywords}
        self._set_opt_out = scripts.register(client, "set_opt_out", settings.message_retention_seconds)
        self._shape = functools.lru_cache(maxsize=1024)(self._request_shape)  # see `rules`

    # --- the create scripts' rules ---

    def rules(
        self,
        account: str,
        carriers: tuple[tuple[str, str], ...],
        template: bool,
        fallback: bool,
        phone: str = "",
        confirms_opt_out: bool = False,
    ) -> str:
        """What a create script checks for a request (lib/contacts.lua `contact_refusals`), as one JSON argument,
        from `account` for a message that may go from any of `carriers` (provider, sender): its one sender, or a
        pool's members. The opt-out list (`optouts`); the window (`window`: the senders that may carry the
        message, present when it applies: to a free-form message, no `template`, when every carrier is held to
        it; `fallback`, the request's fallback template, lets it through, sent as that template if the window
        is still closed at its claim); the daily cap (`cap`, 0: none, and then nothing is counted).
        `phone` is a single send's recipient (a bulk row brings its own). An opt-out's own confirmation
        (`confirms_opt_out`) is the one message an opted-out number gets.

        It is on every send's path: the part that depends on the request's shape only is made once."""
        now = self.clock()
        day = int(now // DAY)
        shape = self._shape(account, carriers, template, fallback, confirms_opt_out)
        # An E.164 number (or "") needs no escaping in JSON.
        return f'{shape}, "now": {now!r}, "day": {day}, "expires": {(day + 2) * DAY}, "phone": "{phone}"}}'

    def _request_shape(
        self, account: str, carriers: tuple[tuple[str, str], ...], template: bool, fallback: bool, confirms: bool
    ) -> str:
        windowed = [sender_id(provider, sender) for provider, sender in carriers if provider in self.window_providers]
        fields: dict[str, object] = {
            "account": account,
            "cap": 0 if confirms else self.settings.cap_for(account),
            "optouts": not confirms,
            "fallback": fallback,
        }
        if not template and carriers and len(windowed) == len(carriers):
            fields["window"] = windowed
        return json.dumps(fields)[:-1]  # without its closing brace: `rules` adds the rest

    def refusal(self, code: str, account: str) -> ContactRefused:
        return ContactRefused(code, self.settings.cap_for(account))

    # --- replies and the providers' word ---

    def keyword_action(self, text: str) -> str:
        """opt_out or opt_in when a reply's whole text is one of the keywords; else ''."""
        word = normalized(text)
        if word in self.opt_out_words:
            return OPT_OUT
        if word in self.opt_in_words:
            return OPT_IN
        return ""

    def reply_contact(self, incoming: IncomingMessage) -> str:
        """What receive.lua needs of a reply's contact (JSON): the window it opens, the keyword it may be."""
        now = self.clock()
        at = min(incoming.at or now, now)  # a provider's clock ahead of ours must not stretch the window
        action = self.keyword_action(incoming.text) if incoming.from_phone else ""
        return json.dumps(
            {
                "phone": incoming.from_phone,
                "sid": sender_id(incoming.provider, incoming.to),
                "at": at,
                "at_iso": iso(at),
                "action": action,
                "keyword": normalized(incoming.text) if action else "",
                "provider": incoming.provider,
                "sender": incoming.to,
                "accounts": self.accounts,
            }
        )

    def preference_changed(self, change: PreferenceChange) -> str:
        """A provider's word that a contact stopped (or resumed) marketing from one of our senders, applied to
        the accounts whose contact it is; returns changed or same."""
        now = self.clock()
        at = min(change.at or now, now)
        detail = {"source": "provider", "at": iso(at), "provider": change.provider, "sender": change.to}
        changed = self._set_opt_out(
            args=[
                change.phone,
                "out" if change.opted_out else "in",
                json.dumps(detail),
                now,
                self.default_url,
                contact_chain(change.phone, self.chain_key),
                sender_id(change.provider, change.to),
                *self.accounts,
            ]
        )
        return "changed" if changed else "same"

    # --- the API ---

    def set_opted_out(self, account: str, phone: str, out: bool) -> bool:
        """POST (out) or DELETE /v1/opt-outs: returns whether the number's state changed."""
        now = self.clock()
        detail = {"source": "api", "at": iso(now)}
        changed = self._set_opt_out(
            args=[
                phone,
                "out" if out else "in",
                json.dumps(detail),
                now,
                self.default_url,
                contact_chain(phone, self.chain_key),
                "",
                account,
            ]
        )
        return bool(changed)

    def opted_out(self, account: str, phones: Sequence[str]) -> list[bool]:
        """Whether each number is on the account's list, in one round trip."""
        if not phones:
            return []
        scores = self.redis.zmscore(redis_keys.OPT_OUTS.key(account), list(phones))
        return [score is not None for score in scores]

    def page(self, account: str, offset: int, limit: int) -> tuple[list[OptOut], int | None]:
        """The account's opted-out numbers, newest first, from `offset`; and the next page's offset (None: last)."""
        key = redis_keys.OPT_OUTS.key(account)
        entries = self.redis.zrevrange(key, offset, offset + limit, withscores=True)
        more = len(entries) > limit
        entries = entries[:limit]
        pipe = self.redis.pipeline(transaction=False)
        for phone, _ in entries:
            pipe.lindex(redis_keys.CONTACT_LOG.key(account, phone), 0)
        latest = pipe.execute()
        page = [_opt_out(phone, since, entry) for (phone, since), entry in zip(entries, latest, strict=True)]
        return page, (offset + limit if more else None)

    def view(self, account: str, phone: str, pools: Sequence[str]) -> dict:
        """GET /v1/contacts/<phone>: the opt-out state and its history, each sender's window, today's messages
        (under a daily cap, the only time they are counted) and, for each of `pools` that remembers one, the
        member that last wrote to the contact for the account."""
        now = self.clock()
        pipe = self.redis.pipeline(transaction=False)
        pipe.zscore(redis_keys.OPT_OUTS.key(account), phone)
        pipe.lrange(redis_keys.CONTACT_LOG.key(account, phone), 0, -1)
        pipe.hgetall(redis_keys.REACH.key(phone))
        pipe.hget(redis_keys.CONTACT_DAY.key(account, int(now // DAY)), phone)
        for pool in pools:
            pipe.get(redis_keys.STICKY.key(account, pool, phone))
        since, log, reach, today, *sticky = pipe.execute()
        windows = []
        for name, value in sorted(reach.items()):
            if name.startswith("in:"):
                provider, sender = _sender(name.removeprefix("in:"))
                closes = float(value) + WINDOW_SECONDS
                windows.append(
                    {
                        "provider": provider,
                        "sender": sender,
                        "last_inbound_at": iso(float(value)),
                        "window_open_until": iso(closes) if closes > now else None,
                        "window_enforced": provider in self.window_providers,
                    }
                )
        cap = self.settings.cap_for(account)
        return {
            "recipient_phone": phone,
            "opted_out": since is not None,
            "opted_out_at": iso(since) if since is not None else None,
            "history": [json.loads(entry) for entry in log],
            "senders": windows,
            "messages_today": int(today or 0) if cap else None,  # counted only under a cap
            "daily_cap": cap or None,
            "sticky_members": {pool: _member(m) for pool, m in zip(pools, sticky, strict=True) if m},
        }


def _sender(sid: str) -> tuple[str, str]:
    """(provider, sender) of a sender id (the reverse of senders.sender_id)."""
    provider, _, sender = sid.partition(":")
    return provider, sender.replace("%3A", ":").replace("%25", "%")


def _member(sid: str) -> str:
    provider, sender = _sender(sid)
    return f"{provider}/{sender}"


def _opt_out(phone: str, since: float, latest: str | None) -> OptOut:
    entry = json.loads(latest) if latest else {}
    return OptOut(
        recipient_phone=phone,
        opted_out_at=iso(since),
        source=entry.get("source", "api"),
        keyword=entry.get("keyword"),
        provider=entry.get("provider"),
        sender=entry.get("sender"),
    )
