"""Where the URLs we are given may take us: http(s), to public addresses, unless the operator allows more.

Two URLs come from callers and are fetched from inside our network: a `callback_url`, which our callbacks
worker POSTs status events to, and a `media.url`, which the provider downloads (Evolution, hosted beside
us, downloads it from our network and sends what it read to the recipient). Unchecked, anyone with an API
key could have us call Redis, an admin page or a cloud metadata service on a private address, and read
the answer back through WhatsApp (server-side request forgery).

**Public** means `is_global` and not multicast. An IPv6 address that carries an IPv4 one (IPv4-mapped
`::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, 6to4 `2002::/16`, NAT64 `64:ff9b::/96`) is judged by that
IPv4 address, since that is where it leads; Teredo (`2001::/32`), local-use NAT64 (`64:ff9b:1::/48`) and
site-local (`fec0::/10`) are never public, whatever this Python's `ipaddress` says of them.

**A host is read as the clients that fetch it read it**, so that no spelling reaches what its plain form
may not: a non-ASCII name through IDNA (UTS 46, as requests and Node's URL parser do: full-width digits
and ideographic dots become ASCII ones), trailing dots ignored (`localhost.`), and a host whose last label
is a number as an IPv4 address in any form the C resolver takes (`2130706433`, `0x7f.1`, `0177.0.0.1`,
`127.1`), or, if it is none, refused (as a browser-style parser would refuse it). Percent-escapes and
backslashes in the authority are refused: parsers disagree about them (urllib3 decodes `127.0.0.%31`, Node
ends the host at a backslash), and no host name needs them.

**Where each check runs.**

- The API checks both fields with `check_written`: what the URL shows, with no DNS lookup (a DNS server
  that stalls, which anyone can run, would hold a web thread per request).
- The callbacks worker resolves once just before each delivery, checks every address and connects to a
  checked one, never resolving again (`tasks/callbacks.py`): a name cannot answer us a public address
  for the check and a private one for the connection (DNS rebinding).
- The send worker resolves a media URL's host just before the provider call and fails the message when
  an address is not public (`tasks/delivery.py`, `unsafe_media`): that stops the internal names a
  network's own DNS answers (`metadata.google.internal`, `redis.internal`). A name that does not resolve
  passes: nobody can fetch it. The provider resolves the name again when it downloads the file, and we
  cannot pin its lookup: whoever controls a name's DNS can answer us a public address and the provider a
  private one; what stops that is egress filtering on the provider's host (see docs/providers.md).

CALLBACK_URL_ALLOWLIST opens exceptions, for both fields: an address or a CIDR range allows those
addresses (a reach-town backend, or a media server, on the same private network); a host name only lifts
the rule against local names (`localhost`): the addresses it resolves to must still be public or listed
themselves, so listing `hooks.internal` never lets it resolve to 169.254.169.254.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import idna

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

LOCAL_NAMES = ("localhost", "localhost.localdomain")
DEFAULT_PORTS = {"http": 80, "https": 443}
# An IPv6 range whose last 32 bits are an IPv4 address it leads to (the others have properties of their own).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPATIBLE = ipaddress.ip_network("::/96")
# Never public, though Python 3.11's ipaddress calls the last two global.
_NEVER_PUBLIC = tuple(ipaddress.ip_network(net) for net in ("2001::/32", "64:ff9b:1::/48", "fec0::/10"))
_NAME = re.compile(r"(?=.{1,253}\Z)[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*")  # DNS's lengths
_NUMBER = re.compile(r"0x[0-9a-f]*|[0-9]+")  # a label that makes a host an IPv4 address (WHATWG's "ends in a number")


class UnsafeUrl(ValueError):
    """The URL may not be fetched; the message says why, naming the field, for the API's 400 or the dead delivery."""


@dataclass(frozen=True)
class Target:
    """Where a checked URL leads: its host as a connection names it (ASCII, lowercase: a name or an address),
    its port, and the addresses it was checked at (connect to one of these, never to a new lookup's)."""

    host: str
    port: int
    addresses: tuple[Address, ...]


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries and leads to (mapped, compatible, 6to4, NAT64), if any."""
    if address.version == 4:
        return None
    if address.ipv4_mapped or address.sixtofour:
        return address.ipv4_mapped or address.sixtofour
    if address in _NAT64 or (address in _COMPATIBLE and int(address) > 1):  # :: and ::1 are not compatible
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: Address) -> bool:
    """Whether the address is one anyone on the internet could reach (see the module's docstring)."""
    inner = embedded_ipv4(address)
    if inner is not None:
        return is_public(inner)
    return address.is_global and not address.is_multicast and not any(address in net for net in _NEVER_PUBLIC)


@functools.cache
def _allowed_networks(allowlist: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for entry in allowlist:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue  # a host name
    return tuple(networks)


def allowed(address: Address, allowlist: tuple[str, ...]) -> bool:
    """Public, or in an address or range of the allowlist (itself, or the IPv4 address it carries)."""
    if is_public(address):
        return True
    candidates = [a for a in (address, embedded_ipv4(address)) if a is not None]
    return any(a in network for network in _allowed_networks(allowlist) for a in candidates)


def _host_and_port(url: str, field: str) -> tuple[str, int]:
    """The URL's host as a client connects to it (IDNA, lowercase, no trailing dot), and its port."""
    try:
        parts = urlsplit(url)
    except ValueError:  # a bracket left open: "http://[::1"
        raise UnsafeUrl(f"{field} must be an http(s) URL") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise UnsafeUrl(f"{field} must be an http(s) URL")
    if "\\" in parts.netloc or "%" in parts.netloc.rpartition("@")[2]:
        raise UnsafeUrl(f"{field} must not hold a backslash or a percent-escape in its host")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise UnsafeUrl(f"{field} must be an http(s) URL") from None
    if not parts.hostname:
        raise UnsafeUrl(f"{field} must name a host")
    host = parts.hostname
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode()
        except UnicodeError:  # idna's errors, and text that is no Unicode (lone surrogates)
            raise UnsafeUrl(f"{field} must name a valid host") from None
    return host.rstrip("."), port


def _written_address(host: str, field: str) -> Address | None:
    """The address a host is written as, in any form a resolver takes; None for a host name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not _NAME.fullmatch(host):
        raise UnsafeUrl(f"{field} must name a valid host")
    if not _NUMBER.fullmatch(host.rpartition(".")[2]):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        raise UnsafeUrl(f"{field} must name a valid host: {host} is neither a name nor an IPv4 address") from None


def _shown(written: str, address: Address) -> str:
    """An address as the refusal names it: as written, and where it leads when that is not plain."""
    leads_to = str(embedded_ipv4(address) or address)
    return written if written == leads_to else f"{written}, that is {leads_to}"


def check_written(url: str, allowlist: tuple[str, ...], field: str = "callback_url") -> Target:
    """What the URL itself shows: an http(s) scheme, a valid host, no local name and no address that is not
    public (unless allowed). The target's addresses are the written one, or none for a name (resolve it)."""
    host, port = _host_and_port(url, field)
    address = _written_address(host, field)
    if address is None:
        if (host in LOCAL_NAMES or host.endswith(".localhost")) and host not in allowlist:
            raise UnsafeUrl(f"{field} may not point at {host} (see CALLBACK_URL_ALLOWLIST)")
        return Target(host, port, ())
    if not allowed(address, allowlist):
        raise UnsafeUrl(
            f"{field} may not point at a private, loopback or link-local address ({_shown(host, address)}); "
            "see CALLBACK_URL_ALLOWLIST"
        )
    return Target(str(address), port, (address,))


def resolve(host: str, port: int) -> tuple[Address, ...]:
    """Every address a host name resolves to, in the resolver's order, each once: our one DNS lookup.
    Raises socket.gaierror when it does not resolve."""
    infos = socket.getaddrinfo(host.encode(), port, type=socket.SOCK_STREAM)  # ASCII already: no idna codec
    return tuple(dict.fromkeys(ipaddress.ip_address(str(sockaddr[0]).split("%")[0]) for *_, sockaddr in infos))


def check_resolved(url: str, allowlist: tuple[str, ...], field: str = "callback_url") -> Target:
    """`check_written`, then every address the host resolves to must be public (or allowed). Raises
    UnsafeUrl when refused, socket.gaierror when the name does not resolve."""
    target = check_written(url, allowlist, field)
    if target.addresses:
        return target
    addresses = resolve(target.host, target.port)
    for address in addresses:
        if not allowed(address, allowlist):
            raise UnsafeUrl(
                f"{field} host {target.host} resolves to a private, loopback or link-local address "
                f"({_shown(str(address), address)}); see CALLBACK_URL_ALLOWLIST"
            )
    return Target(target.host, target.port, addresses)
