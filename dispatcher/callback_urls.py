"""Where callbacks may go: http(s) URLs whose hosts are public, unless the operator allows them.

A callback_url comes from the caller, and our workers POST to it from inside our network: without
this check, anyone with an API key could make us call Redis, a cloud metadata service or an admin
page on a private address (server-side request forgery). The API checks what it can see in the URL
(the scheme, an address written as such, `localhost`); the worker checks every address the host
name resolves to just before it connects. CALLBACK_URL_ALLOWLIST (host names, CIDR ranges) opens
exceptions, e.g. a reach-town backend on the same private network.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

LOCAL_NAMES = ("localhost", "localhost.localdomain")


class UnsafeCallbackUrl(ValueError):
    """The URL may not be called; the message says why, for the API's 400 or the dead delivery."""


def _allowed_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address, allowlist: tuple[str, ...]) -> bool:
    if address.is_global and not address.is_multicast:
        return True
    return any("/" in entry and address in ipaddress.ip_network(entry, strict=False) for entry in allowlist)


def _host(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeCallbackUrl("callback_url must be an http(s) URL")
    if not parts.hostname:
        raise UnsafeCallbackUrl("callback_url must name a host")
    return parts.hostname.lower()


def check_written(url: str, allowlist: tuple[str, ...]) -> None:
    """What the URL itself shows: an http(s) scheme, and no private address or local name (unless allowed)."""
    host = _host(url)
    if host in allowlist:
        return
    if host in LOCAL_NAMES or host.endswith(".localhost"):
        raise UnsafeCallbackUrl(f"callback_url may not point at {host} (see CALLBACK_URL_ALLOWLIST)")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return  # a host name: checked when it is resolved, just before each delivery
    if not _allowed_address(address, allowlist):
        raise UnsafeCallbackUrl(
            f"callback_url may not point at a private, loopback or link-local address ({host}); "
            "see CALLBACK_URL_ALLOWLIST"
        )


def check_resolved(url: str, allowlist: tuple[str, ...]) -> None:
    """Every address the host resolves to must be public (or allowed): checked just before connecting."""
    check_written(url, allowlist)
    host = _host(url)
    if host in allowlist:
        return
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as error:
        raise UnsafeCallbackUrl(f"callback host {host} does not resolve: {error}") from None
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if not _allowed_address(address, allowlist):
            raise UnsafeCallbackUrl(f"callback host {host} resolves to a private address ({address})")
