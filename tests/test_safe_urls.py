"""URLs we are given may not lead inside our network (server-side request forgery): every spelling of a
private, loopback, link-local or otherwise non-public address is refused, for `callback_url` and for
`media.url`, by the checker and through the API (a 400 naming the field, nothing stored). The API judges
what a URL shows, without a DNS lookup (a stalling DNS server would hold a web thread); a host name is
judged by the workers: before each callback delivery, and before a send with media.

Names are resolved by a stub of the outside world (DNS: `socket.getaddrinfo`), never by stubbing our code."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.callback_urls import (
    UnsafeUrl,
    allowed,
    check_resolved,
    check_written,
    embedded_ipv4,
    is_public,
)
from dispatcher.store import Claim
from tasks.delivery import unsafe_media
from tests.conftest import auth, wait_for
from tests.fakes.receiver import SECRET

PHONE = "+5564999998888"

REFUSED = [
    # written as addresses
    "http://127.0.0.1:9/hook",
    "http://10.0.0.8/hook",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://0.0.0.0/",
    "http://224.0.0.1/",  # multicast
    "http://240.0.0.1/",  # reserved
    "http://255.255.255.255/",
    "http://[::1]/hook",
    "http://[::]/",
    "http://[fe80::1]/",
    "http://[fd00::1]/",
    "http://[fec0::1]/",  # site-local
    "http://[ff02::1]/",  # multicast
    # IPv6 carrying a private IPv4
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[2002:a00:1::]/",  # 6to4 of 10.0.0.1
    "http://[2002:a9fe:a9fe::1]/",  # 6to4 of 169.254.169.254
    "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
    "http://[64:ff9b:1::808:808]/",  # local-use NAT64: never public
    "http://[2001::1]/",  # Teredo
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
    # numbers the C resolver takes for 127.0.0.1 (and 0.0.0.0)
    "http://2130706433/",
    "http://0x7f.1/",
    "http://0x7f000001/",
    "http://0x7f.0.0.1/",
    "http://0177.0.0.1/",
    "http://017700000001/",
    "http://127.1/",
    "http://127.0.1/",
    "http://0/",
    "http://127.0.0.1./",
    # hosts that are no valid host, or spelled to slip past a parser
    "http://1.2.3.4.5/",
    "http://" + "a" * 64 + ".example/",  # a label longer than DNS takes
    "http://example.123/",
    "http://127.0.0.%31/",
    "http://127.0.0.1\\@evil.example/",
    "http://evil.example\\@127.0.0.1/",
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/",  # full-width digits: IDNA makes them 127.0.0.1
    # local names
    "http://localhost:3000/hook",
    "http://LOCALHOST/",
    "http://localhost./",
    "http://localhost\u3002/",  # an ideographic full stop: IDNA makes it a dot
    "http://localhost.localdomain/",
    "http://api.localhost/",
    # not http(s)
    "ftp://example.com/hook",
    "file:///etc/passwd",
    "gopher://example.com/",
    "http://[::1",  # a bracket left open
]

PUBLIC = [
    "https://93.184.215.14/menu.pdf",
    "https://[2606:4700::1111]/hook",
    "https://[64:ff9b::808:808]/hook",  # NAT64 of 8.8.8.8
    "https://[2002:808:808::1]/hook",  # 6to4 of 8.8.8.8
    "https://user:p%40ss@93.184.215.14:8443/hook?x=%2F",
]

# A stub of DNS: these names answer these addresses; `.invalid` names do not exist; others go to the real resolver.
ZONE = {
    "files.test": ["10.0.0.7"],
    "meta.test": ["169.254.169.254"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "mixed.test": ["93.184.215.14", "10.0.0.1"],
    "public.test": ["93.184.215.14", "2606:4700::1111"],
    "hooks.internal": ["10.0.0.5"],
    "localhost": ["127.0.0.1"],
}


@pytest.fixture
def dns(monkeypatch):
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else host
        if name.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if name not in ZONE:
            return real(host, port, family, type, proto, flags)
        answers = []
        for text in ZONE[name]:
            address = ipaddress.ip_address(text)
            kind = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            sockaddr = (text, port, 0, 0) if address.version == 6 else (text, port)
            answers.append((kind, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        return answers

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# --- the checker ---


@pytest.mark.parametrize("url", REFUSED, ids=repr)
@pytest.mark.parametrize("field", ["callback_url", "media.url"])
def test_the_checker_refuses_every_spelling_of_a_place_inside(url, field):
    with pytest.raises(UnsafeUrl) as refused:
        check_resolved(url, (), field)
    assert str(refused.value).startswith(f"{field} ")


@pytest.mark.parametrize(
    "url", [*PUBLIC, "https://[::ffff:8.8.8.8]/hook"], ids=repr
)  # the API's schema refuses the last
def test_the_checker_lets_public_addresses_through_without_a_lookup(url):
    target = check_written(url, ())
    assert len(target.addresses) == 1 and is_public(target.addresses[0])
    assert check_resolved(url, ()) == target


HOST_CHARACTERS = "0123456789abcdefxX.:[]%@\\/-_#?" + "\uff10\uff11\u3002\u00df\u0130"


@given(st.sampled_from(["http://", "https://", "HTTP://", "ftp://", ""]), st.text(HOST_CHARACTERS, max_size=40))
def test_whatever_a_url_holds_the_checker_refuses_or_names_allowed_addresses_only(scheme, rest):
    try:
        target = check_written(scheme + rest, ("10.0.0.0/8",))
    except UnsafeUrl:
        return
    assert all(allowed(address, ("10.0.0.0/8",)) for address in target.addresses)


def test_an_address_spelled_as_a_number_is_named_in_the_refusal():
    with pytest.raises(UnsafeUrl, match=r"\(0x7f\.1, that is 127\.0\.0\.1\)"):
        check_written("http://0x7f.1/", ())


@pytest.mark.parametrize(
    ("address", "ipv4"),
    [
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("::127.0.0.1", "127.0.0.1"),
        ("2002:a9fe:a9fe::1", "169.254.169.254"),
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
        ("::1", None),
        ("::", None),
        ("2606:4700::1111", None),
        ("10.0.0.1", None),
    ],
)
def test_the_ipv4_address_an_ipv6_one_leads_to(address, ipv4):
    found = embedded_ipv4(ipaddress.ip_address(address))
    assert (str(found) if found else None) == ipv4


def test_a_name_is_refused_when_any_address_it_resolves_to_is_not_public(dns):
    for name, address in [("files.test", "10.0.0.7"), ("meta.test", "169.254.169.254"), ("mixed.test", "10.0.0.1")]:
        with pytest.raises(UnsafeUrl, match=f"media.url host {name} resolves to .*\\({address}\\)"):
            check_resolved(f"https://{name}/a.pdf", (), "media.url")
    with pytest.raises(UnsafeUrl, match=r"\(::ffff:7f00:1, that is 127\.0\.0\.1\)"):
        check_resolved("https://mapped.test/", ())
    target = check_resolved("https://public.test:8443/", ())
    assert (target.host, target.port) == ("public.test", 8443)
    assert [str(a) for a in target.addresses] == ["93.184.215.14", "2606:4700::1111"]


def test_a_name_that_does_not_resolve_raises_the_resolvers_error(dns):
    with pytest.raises(socket.gaierror):
        check_resolved("https://nowhere.invalid/", ())


def test_an_allowlisted_name_is_still_judged_by_its_addresses(dns):
    with pytest.raises(UnsafeUrl, match=r"resolves to .*\(10\.0\.0\.5\)"):
        check_resolved("http://hooks.internal/h", ("hooks.internal",))
    assert check_resolved("http://hooks.internal/h", ("hooks.internal", "10.0.0.0/8")).addresses
    assert check_resolved("http://hooks.internal/h", ("10.0.0.5",)).addresses  # the address alone is enough
    with pytest.raises(UnsafeUrl, match="localhost"):
        check_resolved("http://localhost:8080/h", ("127.0.0.1",))  # a local name needs its name listed
    with pytest.raises(UnsafeUrl, match=r"resolves to .*\(127\.0\.0\.1\)"):
        check_resolved("http://localhost:8080/h", ("localhost",))  # and its addresses
    assert check_resolved("http://localhost:8080/h", ("localhost", "127.0.0.1")).addresses


def test_an_allowlisted_range_allows_every_spelling_of_its_addresses():
    for url in ["http://10.1.2.3/", "http://[::ffff:10.1.2.3]/", "http://0x0a.1/", "http://[2002:a01:203::]/"]:
        assert check_resolved(url, ("10.0.0.0/8",)).addresses, url
    with pytest.raises(UnsafeUrl):
        check_resolved("http://169.254.169.254/", ("10.0.0.0/8",))


# --- through the API ---


def _bodies(url: str) -> dict[str, dict]:
    """A single send carrying `url` in each field."""
    base = {"recipient_phone": PHONE, "external_id": "e1"}
    return {
        "callback_url": {**base, "message_body": "x", "callback_url": url},
        "media": {**base, "media": {"url": url, "type": "document"}},
    }


@pytest.mark.parametrize("url", REFUSED, ids=repr)
def test_the_api_refuses_every_spelling_on_both_fields(make_app, redis_client, dns, url):
    client = make_app(WEBHOOK_SECRET=SECRET)
    for field, body in _bodies(url).items():
        answer = client.post("/v1/messages/send", json=body, headers=auth())
        assert answer.status_code == 400, (field, answer.json)
        assert (answer.json["field"], answer.json["code"]) == (field, "invalid_field")
        assert answer.json["error"].startswith("callback_url " if field == "callback_url" else "media.url ")
    assert redis_client.keys("dispatch:msg:*") == []


def test_the_api_resolves_no_name_so_a_stalling_dns_server_holds_no_web_thread(make_app, monkeypatch):
    real = socket.getaddrinfo

    def stalls(host, *args, **kwargs):
        if (host.decode() if isinstance(host, bytes) else host) == "files.test":
            raise AssertionError("the request path looked a name up")
        return real(host, *args, **kwargs)  # Redis's own address

    monkeypatch.setattr(socket, "getaddrinfo", stalls)
    client = make_app(WEBHOOK_SECRET=SECRET)
    for field, body in _bodies("https://files.test/menu.pdf").items():
        answer = client.post("/v1/messages/send", json={**body, "external_id": field}, headers=auth())
        assert answer.status_code == 200, field


@pytest.mark.parametrize("name", ["files.test", "meta.test", "mixed.test", "mapped.test"])
def test_the_worker_refuses_media_whose_name_resolves_inside(dns, name):
    claim = Claim(message_id="msg-1", outcome="claimed", media=f'{{"url": "https://{name}/menu.pdf"}}')
    assert f"host {name} resolves to" in unsafe_media(claim, ())
    assert unsafe_media(claim, ("0.0.0.0/0", "::/0")) is None  # what the allowlist opens
    public = Claim(message_id="msg-2", outcome="claimed", media='{"url": "https://public.test/menu.pdf"}')
    assert unsafe_media(public, ()) is None
    nowhere = Claim(message_id="msg-3", outcome="claimed", media='{"url": "https://nowhere.invalid/a.pdf"}')
    assert unsafe_media(nowhere, ()) is None  # nobody can fetch it: the provider says so


def test_a_send_whose_media_name_resolves_inside_fails_without_reaching_the_provider(client, start_worker):
    """End to end, on this machine's own name (it resolves to a loopback or private address here)."""
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None)}
    except socket.gaierror:
        pytest.skip("this machine's name does not resolve")
    if any(is_public(ipaddress.ip_address(a.split("%")[0])) for a in addresses):
        pytest.skip("this machine's name resolves to a public address")
    body = {"recipient_phone": PHONE, "external_id": "m1", "media": {"url": f"http://{name}/a.pdf", "type": "document"}}
    message_id = client.post("/v1/messages/send", json=body, headers=auth()).json["message_id"]
    start_worker()
    failed = wait_for(
        lambda: (m := client.get(f"/v1/messages/{message_id}", headers=auth()).json)["status"] == "failed" and m,
        20,
        what="the send to fail",
    )
    assert failed["last_error"]["code"] == "unsafe_media_url"
    assert "resolves to" in failed["last_error"]["message"]


def test_the_api_accepts_public_places_and_names_that_do_not_resolve(make_app, dns):
    client = make_app(WEBHOOK_SECRET=SECRET)
    urls = [*PUBLIC, "https://public.test/menu.pdf", "https://nowhere.invalid/menu.pdf"]
    for n, url in enumerate(urls):
        for field, body in _bodies(url).items():
            answer = client.post("/v1/messages/send", json={**body, "external_id": f"{field}-{n}"}, headers=auth())
            assert answer.status_code == 200, (url, field, answer.json)


def test_the_allowlist_opens_a_range_for_both_fields(make_app, dns):
    client = make_app(WEBHOOK_SECRET=SECRET, CALLBACK_URL_ALLOWLIST="hooks.internal,10.0.0.0/8")
    for n, url in enumerate(["http://10.1.2.3/a.pdf", "http://hooks.internal/a.pdf", "http://files.test/a.pdf"]):
        for field, body in _bodies(url).items():
            answer = client.post("/v1/messages/send", json={**body, "external_id": f"{field}-{n}"}, headers=auth())
            assert answer.status_code == 200, (url, field, answer.json)
    answer = client.post("/v1/messages/send", json=_bodies("http://169.254.169.254/")["media"], headers=auth())
    assert answer.status_code == 400 and answer.json["field"] == "media"  # outside the range opened
    claim = Claim(message_id="msg-1", outcome="claimed", media='{"url": "http://meta.test/a.pdf"}')
    assert "resolves to" in unsafe_media(claim, ("hooks.internal", "10.0.0.0/8"))
