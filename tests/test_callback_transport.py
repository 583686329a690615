"""One callback delivery at its transport edges: it connects to the address it checked (never to a second
lookup's: DNS rebinding), names the host in Host and, over https, in SNI and the certificate check; it
reads a bounded answer and ends within CALLBACK_TIMEOUT however the answer trickles.

The deliveries here are `tasks.callbacks.post` called in this process against real servers on loopback
addresses; DNS, the outside world, is a stub (`socket.getaddrinfo`). The worker-level tests (a real
`callbacks` worker) are at the end."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from dispatcher.callback_urls import UnsafeUrl
from dispatcher.outbox import Pending
from dispatcher.settings import CallbackSettings
from tasks.callbacks import ANSWER_MAX_BYTES, post
from tests.conftest import auth, operator, wait_for
from tests.fakes.raw_receiver import RawReceiver, dripping, huge, no_content
from tests.fakes.receiver import SECRET

PHONE = "+5564999998888"


class Dns:
    """A stub of DNS: each name answers its list of addresses (the next list on each lookup, the last one
    again once they run out); other names go to the real resolver. Counts the lookups of each name."""

    def __init__(self, real):
        self.real = real
        self.zone: dict[str, list[list[str]]] = {}
        self.lookups: dict[str, int] = {}

    def answer(self, name: str, *answers: list[str]) -> None:
        self.zone[name] = list(answers)

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in self.zone:
            return self.real(host, port, family, type, proto, flags)
        count = self.lookups[name] = self.lookups.get(name, 0) + 1
        answers = self.zone[name]
        results = []
        for text in answers[min(count, len(answers)) - 1]:
            v6 = ipaddress.ip_address(text).version == 6
            sockaddr = (text, int(port or 0), 0, 0) if v6 else (text, int(port or 0))
            results.append((socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM, 6, "", sockaddr))
        return results


@pytest.fixture
def dns(monkeypatch):
    stub = Dns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", stub)
    return stub


@pytest.fixture
def servers():
    started: list[RawReceiver] = []

    def start(*args, **kwargs) -> RawReceiver:
        server = RawReceiver(*args, **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def settings(allowlist: str = "127.0.0.1", timeout: float = 2.0) -> CallbackSettings:
    return CallbackSettings(secret=SECRET, allowlist=tuple(allowlist.split(",")), timeout_seconds=timeout)


def pending(url: str) -> Pending:
    event = {"event_id": "msg-1.1", "type": "message.sent", "message_id": "msg-1"}
    return Pending("msg-1", "", url, event, 0, None)


# --- the address we connect to ---


def test_the_delivery_connects_to_the_address_it_checked_not_to_a_second_lookup(dns, servers):
    checked = servers(no_content)
    inside = servers(no_content, host="127.0.0.2", port=checked.port)  # what a second lookup would reach
    dns.answer("rebind.test", ["127.0.0.1"], ["127.0.0.2"])  # first the allowed address, then one that is not

    assert post(pending(f"http://rebind.test:{checked.port}/hooks"), settings()) is None

    assert dns.lookups["rebind.test"] == 1
    assert inside.requests == []
    (request,) = checked.requests
    assert request.local_address == "127.0.0.1"
    assert request.headers["host"] == f"rebind.test:{checked.port}"
    assert request.head.startswith("POST /hooks HTTP/1.1")


def test_a_name_answering_an_address_outside_the_allowlist_is_refused_before_any_connection(dns, servers):
    inside = servers(no_content, host="127.0.0.2")
    dns.answer("hooks.internal", ["127.0.0.2"])
    with pytest.raises(UnsafeUrl, match=r"hooks\.internal resolves to .*127\.0\.0\.2"):
        post(pending(f"http://hooks.internal:{inside.port}/hooks"), settings("hooks.internal,127.0.0.1"))
    assert inside.requests == []


def test_an_address_refusing_the_connection_hands_over_to_the_next_checked_one(dns, servers):
    receiver = servers(no_content)
    dns.answer("two.test", ["127.0.0.3", "127.0.0.1"])  # nothing listens on 127.0.0.3
    assert post(pending(f"http://two.test:{receiver.port}/hooks"), settings("127.0.0.0/8")) is None
    assert [r.local_address for r in receiver.requests] == ["127.0.0.1"]
    assert dns.lookups["two.test"] == 1


# --- https: SNI and the certificate, for the host name ---


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A CA and two server certificates it signed, for hooks.test and for other.test (openssl's CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    directory = tmp_path_factory.mktemp("tls")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")  # fmt: skip
    for name in ("hooks.test", "other.test"):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        (directory / f"{name}.ext").write_text(f"subjectAltName=DNS:{name}\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")  # fmt: skip
    return directory


def tls_for(certificates, name: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates / f"{name}.pem", certificates / f"{name}.key")
    return context


def test_https_names_the_host_in_sni_and_checks_the_certificate_against_it(dns, servers, certificates, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificates / "ca.pem"))
    receiver = servers(no_content, tls=tls_for(certificates, "hooks.test"))
    dns.answer("hooks.test", ["127.0.0.1"])

    assert post(pending(f"https://hooks.test:{receiver.port}/hooks"), settings()) is None

    (request,) = receiver.requests
    assert request.server_name == "hooks.test"
    assert request.headers["host"] == f"hooks.test:{receiver.port}"


def test_https_refuses_a_certificate_for_another_name(dns, servers, certificates, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificates / "ca.pem"))
    receiver = servers(no_content, tls=tls_for(certificates, "other.test"))
    dns.answer("hooks.test", ["127.0.0.1"])

    error = post(pending(f"https://hooks.test:{receiver.port}/hooks"), settings())

    assert error is not None and "hooks.test" in error and "certificate" in error.lower(), error
    assert receiver.requests == []


# --- the answer: bounded, and within the deadline ---


def test_a_huge_answer_is_read_only_up_to_the_bound(servers):
    receiver = servers(huge(200 * 1024 * 1024))
    began = time.monotonic()
    assert post(pending(receiver.url), settings(timeout=5)) is None  # a 200: delivered
    assert time.monotonic() - began < 5
    (request,) = wait_for(lambda: [r for r in receiver.requests if r.client_gone_at], 5, what="the client to go")
    assert not request.answered
    # What the server could send is what we read plus what the two sockets' buffers held.
    assert request.bytes_sent < 8 * 1024 * 1024, request.bytes_sent
    assert ANSWER_MAX_BYTES <= 64 * 1024


def test_a_short_answer_leaves_its_connection_to_the_next_delivery(dns, servers):
    receiver = servers(no_content)
    dns.answer("again.test", ["127.0.0.1"])
    for _ in range(3):
        assert post(pending(f"http://again.test:{receiver.port}/hooks"), settings()) is None
    assert [r.connection for r in receiver.requests] == [1, 1, 1]


@pytest.mark.parametrize(
    "prefix",
    [
        b"",  # the status line itself drips
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",  # a body read until the connection closes
    ],
    ids=["status line", "content-length body", "chunked body", "body until close"],
)
def test_an_answer_dripping_past_the_deadline_is_cut_at_it_and_is_no_delivery(servers, prefix):
    receiver = servers(dripping(prefix, interval=0.3))  # far below the read timeout: only the deadline ends it
    began = time.monotonic()
    error = post(pending(receiver.url), settings(timeout=1.5))
    elapsed = time.monotonic() - began
    assert error == "no complete answer within 1.5 s"
    assert 1.4 <= elapsed < 2.0, elapsed
    (request,) = wait_for(lambda: [r for r in receiver.requests if r.client_gone_at], 5, what="the client to go")
    assert request.client_gone_at - request.arrived_at < 2.0


def test_a_lookup_that_outlasts_the_deadline_leaves_no_time_for_the_answer(dns, servers, monkeypatch):
    """No socket shutdown can cut a DNS lookup; a connection made after the deadline passed is cut at once."""
    receiver = servers(dripping(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", interval=0.3))
    dns.answer("slow.test", ["127.0.0.1"])

    def slow_lookup(host, *args, **kwargs):
        if host in (b"slow.test", "slow.test"):
            time.sleep(1.7)  # the resolver's stall (the outside world), past the 1.5 s deadline
        return dns(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow_lookup)
    began = time.monotonic()
    assert post(pending(f"http://slow.test:{receiver.port}/hooks"), settings(timeout=1.5)) == (
        "no complete answer within 1.5 s"
    )
    assert time.monotonic() - began < 2.2


# --- a real callbacks worker ---


def worker_env(**extra: str) -> dict[str, str]:
    return {
        "WEBHOOK_SECRET": SECRET,
        "CALLBACK_URL_ALLOWLIST": "127.0.0.1",
        "CALLBACK_BACKOFF_BASE": "0.1",
        "CALLBACK_BACKOFF_MAX": "0.5",
        **extra,
    }


def send(client, external_id: str, callback_url: str) -> str:
    body = {"recipient_phone": PHONE, "message_body": "Olá", "external_id": external_id, "callback_url": callback_url}
    answer = client.post("/v1/messages/send", json=body, headers=auth())
    assert answer.status_code == 200, answer.json
    return answer.json["message_id"]


def test_a_worker_gives_up_on_a_body_dripping_every_2_s_at_callback_timeout_and_tries_again(
    make_app, start_worker, start_callbacks_worker, servers
):
    env = worker_env(CALLBACK_TIMEOUT="5")
    receivers = [
        servers(dripping(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", interval=2)),
        servers(dripping(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", interval=2)),  # read until it closes
    ]
    client = make_app(**env)
    start_worker(**env)
    start_callbacks_worker(**env)
    for n, receiver in enumerate(receivers):
        send(client, f"drip-{n}", receiver.url)

    for receiver in receivers:
        first, second = wait_for(lambda r=receiver: r.requests[:2] if len(r.requests) >= 2 else None, 30,
                                 what="a second attempt")  # fmt: skip
        assert first.client_gone_at is not None
        assert 4.9 <= first.client_gone_at - first.arrived_at < 6.5  # CALLBACK_TIMEOUT, and a small margin
        assert second.arrived_at >= first.client_gone_at
        assert first.body == second.body  # the same event, again


def test_a_worker_delivering_to_a_receiver_answering_200_mib_reads_only_the_bound(
    make_app, start_worker, start_callbacks_worker, servers
):
    env = worker_env()
    receiver = servers(huge(200 * 1024 * 1024))
    client = make_app(**env)
    start_worker(**env)
    start_callbacks_worker(**env)
    message_id = send(client, "huge-1", receiver.url)

    (request,) = wait_for(
        lambda: [r for r in receiver.requests if r.client_gone_at], 30, what="the worker to stop reading"
    )
    assert request.bytes_sent < 8 * 1024 * 1024, request.bytes_sent
    assert not request.answered

    def settled():
        return client.get("/v1/queue/status", headers=operator()).json["callbacks_waiting"] == 0

    wait_for(settled, 20, what="the delivery to be recorded as delivered")
    assert len(receiver.requests) == 1  # delivered once: a 200, however long its body
    assert f'"message_id":"{message_id}"' in request.body.decode()
