"""The HTTP transport of webhook deliveries: it connects only to addresses it has just
checked are public.

Checking a subscriber's URL and then letting the HTTP client resolve the name again leaves
a gap: a name can answer the check with a public address and the connection with
127.0.0.1 or the cloud metadata address (DNS rebinding). Here the check and the connection
use one resolution. The URL keeps its host name, so TLS verifies the certificate against
it and connections are pooled per name, never shared between two names of one address.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import httpcore
import httpx

from service.workflows.webhooks.urls import public_addresses


class PublicOnlyBackend(httpcore.SyncBackend):
    """A network backend that resolves the host once, refuses it unless every address is
    public (:class:`~service.workflows.webhooks.urls.UnsafeUrlError`), and connects to
    those addresses in the resolver's order."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[tuple[int, int, int | bytes]] | None = None,
    ) -> httpcore.NetworkStream:
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        # One connect timeout for all the addresses together, not one each: a send must
        # stay within the delivery's lease, which only exceeds one timeout.
        deadline = None if timeout is None else time.monotonic() + timeout
        for address in public_addresses(host, port):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise httpcore.ConnectTimeout(f"connecting to {host!r} timed out")
            try:
                return super().connect_tcp(address, port, left, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # the next address may answer, as create_connection does
        raise failure or httpcore.ConnectError(f"no address to connect to for {host!r}")


def public_only_transport() -> httpx.HTTPTransport:
    """An httpx transport whose connections go through :class:`PublicOnlyBackend` (for
    direct connections only: with a transport given, httpx ignores proxies set in the
    environment, so the delivery worker uses none of ours then)."""
    transport = httpx.HTTPTransport(retries=0)
    pool = transport._pool  # httpx builds its pool without a backend argument
    if not isinstance(pool, httpcore.ConnectionPool):
        raise TypeError(f"unexpected httpx pool {type(pool).__name__}")
    pool._network_backend = PublicOnlyBackend()
    return transport
