"""A TCP proxy in front of the real Redis that breaks the connection at a chosen command.

Our guarantees are about what happens when a multi-step change is cut between two steps. This proxy
reads the commands our code sends (RESP arrays, pipelined or not), counts them, and from the chosen
one on refuses to forward anything: the connection is closed and every later connection with it, as
if the process had died or the network had failed right there. Commands before the cut reach Redis
and are carried out, so a pipeline can be cut in its middle. `heal()` lets traffic through again.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from scripts.embedded_redis import free_port


class RedisProxy:
    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.commands = 0  # commands forwarded since the last `cut_at`
        self._cut_at: int | None = None
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def cut_at(self, command: int) -> None:
        """Forward `command` more commands from now on, then none (0: none at all)."""
        with self._lock:
            self.commands, self._cut_at = 0, command

    def heal(self) -> None:
        with self._lock:
            self._cut_at = None

    @property
    def cut(self) -> bool:
        with self._lock:
            return self._cut_at is not None and self.commands >= self._cut_at

    def close(self) -> None:
        self._server.close()
        self._drop_all()

    def _drop_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self.cut:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._to_redis, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._to_client, args=(upstream, client), daemon=True).start()

    def _to_client(self, upstream: socket.socket, client: socket.socket) -> None:
        try:
            while data := upstream.recv(65536):
                client.sendall(data)
        except OSError:
            pass

    def _to_redis(self, client: socket.socket, upstream: socket.socket) -> None:
        buffer = b""
        try:
            while data := client.recv(65536):
                buffer += data
                while (end := _command_end(buffer)) is not None:
                    with self._lock:
                        allowed = self._cut_at is None or self.commands < self._cut_at
                        if allowed:
                            self.commands += 1
                    if not allowed:
                        self._drop_all()
                        return
                    upstream.sendall(buffer[:end])
                    buffer = buffer[end:]
        except OSError:
            pass


def _command_end(buffer: bytes) -> int | None:
    """Where the first complete RESP command in `buffer` ends (an array of bulk strings), or None."""
    if not buffer.startswith(b"*"):
        line_end = buffer.find(b"\r\n")  # an inline command
        return None if line_end < 0 else line_end + 2
    line_end = buffer.find(b"\r\n")
    if line_end < 0:
        return None
    position = line_end + 2
    for _ in range(int(buffer[1:line_end])):
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        position = line_end + 2 + int(buffer[position + 1 : line_end]) + 2
        if position > len(buffer):
            return None
    return position
