"""Subscriber URL validation against SSRF: no loopback, private, link-local or reserved
addresses unless an admin setting allows them.

The host is resolved and EVERY address it resolves to must be public, so a name that points
at 127.0.0.1 or at the cloud metadata address (169.254.169.254) is refused like the literal
address. Validation runs when a subscription is created and again before each delivery (a
name may be re-pointed later); redirects are never followed. The delivery's connection
checks again the addresses it connects to (:mod:`service.workflows.webhooks.transport`), so
a name that resolves to a public address for the check and to a private one for the
connection (DNS rebinding) is refused too.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from renewal.errors import RenewalError

MAX_URL_LENGTH = 2000


class UnsafeUrlError(RenewalError):
    """A subscriber URL is malformed or points at an address the service must not call."""


class UnresolvableHostError(UnsafeUrlError):
    """The host does not resolve (now): refused when subscribing, retried when delivering,
    since a receiver's DNS outage is as temporary as its HTTP one."""


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for label, flag in (
        ("loopback", address.is_loopback),
        ("private", address.is_private),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("unspecified", address.is_unspecified),
    ):
        if flag:
            return label
    if not address.is_global:
        return "non-global"
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order of preference (literal
    addresses resolve to themselves)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHostError(f"subscriber host {host!r} does not resolve") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def public_addresses(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, if every one is public; else UnsafeUrlError."""
    addresses = resolve(host, port)
    for text in addresses:
        reason = _forbidden(ipaddress.ip_address(text.split("%", 1)[0]))
        if reason:
            raise UnsafeUrlError(
                f"URL host {host!r} resolves to a {reason} address ({text}); such targets are "
                "refused unless RENEWAL_WEBHOOK_ALLOW_PRIVATE_URLS is set"
            )
    return addresses


def validate_subscriber_url(url: str, allow_private: bool = False, check_dns: bool = True) -> str:
    """The URL if it is safe to call; :class:`UnsafeUrlError` says why not."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrlError(f"URL longer than {MAX_URL_LENGTH} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http"):
        raise UnsafeUrlError("URL must start with https:// (or http://)")
    if parts.username or parts.password:
        raise UnsafeUrlError("URL must not carry credentials (user:password@)")
    host = parts.hostname
    if not host:
        raise UnsafeUrlError("URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeUrlError("URL has an invalid port") from None
    if allow_private:
        return url
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        raise UnsafeUrlError("URL points at localhost (see webhook_allow_private_urls)")
    if literal is not None or check_dns:
        public_addresses(host, port)
    return url
