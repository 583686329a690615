"""A total deadline for HTTP calls made with `requests`.

`requests`' timeouts bound each socket operation, not the call: a server that trickles its answer a
few bytes at a time, a DNS stall, or several addresses per host keep one call alive far past
`connect + read` timeout. Here every socket a session's connections use registers itself with the
call in progress on its thread, and one watchdog thread shuts the call's sockets down when its deadline
passes: the blocked read fails at once, and `requests` raises a ConnectionError the caller sorts
like any other transport failure. A DNS lookup has no socket to shut down and cannot be cut; a socket
that joins a call after its deadline passed (the lookup outlasted it) is shut down at once.

(A connection goes back to the pool a moment before its call ends; a deadline that fell in exactly
that moment could shut a socket another thread just took from the pool. That call fails as a refused
connection would, and is retried: harmless, and far rarer than the hang it prevents.)
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_local = threading.local()


class _Call:
    def __init__(self, deadline: float):
        self.deadline = deadline
        self.sockets: list[socket.socket] = []
        self.active = True
        self.expired = False
        self.lock = threading.Lock()

    def expire(self) -> None:
        with self.lock:
            if not self.active:
                return
            self.expired = True
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """One thread for the whole process, sleeping until the earliest deadline."""

    def __init__(self):
        self._heap: list[tuple[float, int, _Call]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, call: _Call) -> None:
        with self._wake:
            heapq.heappush(self._heap, (call.deadline, next(self._order), call))
            if self._thread is None or not self._thread.is_alive():  # none yet, or a forked child's
                self._thread = threading.Thread(target=self._run, name="http-deadlines", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._heap and not self._heap[0][2].active:
                    heapq.heappop(self._heap)  # ended in time
                if not self._heap:
                    self._wake.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                _, _, call = heapq.heappop(self._heap)
            call.expire()


_watchdog = _Watchdog()


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[_Call]:
    """Every HTTP call on this thread inside the block, through a `DeadlineAdapter`, ends within `seconds`
    in all; the yielded call's `expired` tells whether the deadline cut it."""
    call = _Call(time.monotonic() + seconds)
    outer, _local.call = getattr(_local, "call", None), call
    _watchdog.watch(call)
    try:
        yield call
    finally:
        with call.lock:
            call.active = False
        _local.call = outer


class _HTTPConnection(HTTPConnection):
    """urllib3's connection (and the base of our https one): the socket a request goes out on (a pooled one, or
    the one it connects) joins the call in progress on its thread. The socket, not the connection: a response read
    to the end of a closing connection holds the socket after the connection has let go of it."""

    def connect(self):
        super().connect()
        _join(self.sock)

    def request(self, *args, **kwargs):
        _join(self.sock)
        return super().request(*args, **kwargs)


def _join(sock: socket.socket | None) -> None:
    """Add the socket to the call in progress; a call already past its deadline (it passed during a DNS
    lookup, say, which no socket shutdown can cut) has it shut down at once."""
    call = getattr(_local, "call", None)
    if call is not None and sock is not None:
        with call.lock:
            call.sockets.append(sock)
            late = call.expired
        if late:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _HTTPSConnection(_HTTPConnection, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections can be cut by `deadline`."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
