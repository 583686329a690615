"""A callback receiver written on bare sockets, so a test decides every byte of its answer and when it is
sent: a prompt 204, a status line or a body dripping a byte every few seconds, a body of hundreds of MiB
generated on the fly. It listens on the address a test gives (127.0.0.2 as well as 127.0.0.1, to tell
two addresses of one name apart), over TLS when given a context, and records each request: the address
it came in on, its headers, the TLS server name asked for, when the client went away, what was sent."""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Request:
    local_address: str  # the address the client connected to
    head: str
    body: bytes
    server_name: str | None  # the TLS SNI, if any
    connection: int = 0  # which of the receiver's connections it came on (1, 2, ...)
    arrived_at: float = field(default_factory=time.monotonic)
    client_gone_at: float | None = None  # when the client closed its end while we were answering
    bytes_sent: int = 0
    answered: bool = False  # the answer went out whole

    @property
    def headers(self) -> dict[str, str]:
        lines = self.head.split("\r\n")[1:]
        return {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}


Answer = Callable[["RawReceiver", socket.socket, Request], None]


def no_content(receiver: RawReceiver, sock: socket.socket, request: Request) -> None:
    receiver.send(sock, request, b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
    request.answered = True


def dripping(prefix: bytes, interval: float) -> Answer:
    """Send `prefix` at once, then one byte of a never-ending body every `interval` seconds until the client
    goes away. `prefix` may be a whole head (a body drip) or nothing (the status line itself drips)."""

    def answer(receiver: RawReceiver, sock: socket.socket, request: Request) -> None:
        receiver.send(sock, request, prefix)
        text = b"HTTP/1.1 200 OK\r\n" if not prefix else b"x"
        position = 0
        while not receiver.client_gone(sock, request, interval):
            receiver.send(sock, request, text[position % len(text) : position % len(text) + 1])
            position += 1

    return answer


def huge(size: int) -> Answer:
    """A 200 whose body is `size` bytes, generated as it goes out, as fast as the client takes it."""
    chunk = b"x" * 65536

    def answer(receiver: RawReceiver, sock: socket.socket, request: Request) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)  # what "sent" counts is then what was read
        receiver.send(sock, request, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        body_sent = 0
        while body_sent < size:
            receiver.send(sock, request, chunk[: size - body_sent])
            body_sent += min(len(chunk), size - body_sent)
        request.answered = True

    return answer


class RawReceiver:
    def __init__(self, answer: Answer = no_content, host: str = "127.0.0.1", port: int = 0, tls=None):
        self.answer = answer
        self.tls: ssl.SSLContext | None = tls
        self.requests: list[Request] = []
        self._server = socket.create_server((host, port))
        self._server.settimeout(0.05)
        self.host, self.port = self._server.getsockname()[:2]
        self._stopped = threading.Event()
        self.connections = 0
        self._names: dict[int, str] = {}  # id of a TLS socket → the server name its client asked for
        if tls is not None:
            tls.sni_callback = self._remember_name

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/hooks"

    def start(self) -> RawReceiver:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._server.close()

    def _remember_name(self, tls_socket, name, _context) -> None:
        self._names[id(tls_socket)] = name

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                sock, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(sock, self.connections), daemon=True).start()

    def _serve(self, sock: socket.socket, connection: int) -> None:
        try:
            sock.settimeout(10)
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
            while (request := self._read_request(sock)) is not None:
                request.connection = connection
                self.requests.append(request)
                self.answer(self, sock, request)
                if not request.answered:
                    return
        except OSError:
            return  # the client went away, or the handshake failed (a certificate it refused)
        finally:
            sock.close()

    def _read_request(self, sock: socket.socket) -> Request | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        request = Request(sock.getsockname()[0], head.decode("latin-1"), b"", self._names.get(id(sock)))
        length = int(request.headers.get("content-length", "0"))
        while len(body) < length:
            body += sock.recv(65536)
        request.body = body
        return request

    def send(self, sock: socket.socket, request: Request, data: bytes) -> None:
        """Send `data`, counting what the client's side took; a client gone raises OSError (ends the answer)."""
        try:
            sock.sendall(data)
        except OSError:
            request.client_gone_at = request.client_gone_at or time.monotonic()
            raise
        request.bytes_sent += len(data)

    def client_gone(self, sock: socket.socket, request: Request, wait: float) -> bool:
        """Wait up to `wait` seconds for the client to close its end; True (and noted) once it has."""
        readable, _, _ = select.select([sock], [], [], wait)
        if readable and not sock.recv(1, socket.MSG_PEEK):
            request.client_gone_at = time.monotonic()
            return True
        return False
