"""Where a watch's webhook may go: ``https``, or ``http`` to a host named in
``GISTCACHE_WEBHOOK_ALLOW``; and never to a loopback, private, link-local, reserved or
metadata address unless that address (or its network, or the host's name) is named
there. A URL is checked when the watch is made; the address is checked again on every
attempt, as connected to after DNS (services.delivery)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from gistcache.domain.errors import InvalidInput

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookPolicy:
    """``GISTCACHE_WEBHOOK_ALLOW``: host names, and IP addresses or networks."""

    def __init__(self, allow: Sequence[str]) -> None:
        self._hosts: set[str] = set()
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allow:
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._hosts.add(entry.lower())

    def check_url(self, url: str) -> None:
        """``InvalidInput`` (field ``webhook``) for a URL no delivery may go to."""
        parsed = URL(url)
        host = (parsed.host or "").lower()
        if parsed.scheme != "https" and not self._named(host):
            raise InvalidInput(
                "webhook", "webhook.url must be https, or http to a host in GISTCACHE_WEBHOOK_ALLOW"
            )
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return  # a name: its addresses are checked when connecting
        refused = self.refuses(address, host)
        if refused is not None:
            raise InvalidInput("webhook", f"webhook.url names {refused}")

    def _named(self, host: str) -> bool:
        if host in self._hosts:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def refuses(self, address: Address, host: str) -> str | None:
        """Why a delivery may not connect to ``address`` (reached by the name ``host``),
        or None when it may."""
        if host.lower() in self._hosts:
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in net for net in self._networks):
            return None
        for reached in (address, *_embedded(address)):
            if any(reached in net for net in self._networks):
                continue
            kind = _special(reached)
            if kind is not None:
                return f"a {kind} address ({reached})"
        return None


def _embedded(address: Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address carries to: 6to4's (2002::/16) and Teredo's
    server and client (2001::/32); a tunnel reaches them, so they are checked too."""
    if not isinstance(address, ipaddress.IPv6Address):
        return ()
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if address.teredo is not None:
        return address.teredo
    return ()


# cloud providers' instance metadata services
METADATA = (
    ipaddress.ip_network("169.254.169.254/32"),
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("100.100.100.200/32"),
)


def _special(address: Address) -> str | None:
    if any(address in network for network in METADATA if network.version == address.version):
        return "metadata"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    site_local = isinstance(address, ipaddress.IPv6Address) and address.is_site_local
    if address.is_private or address.is_reserved or address.is_multicast or site_local:
        return "private"
    if address.is_unspecified or not address.is_global:
        return "non-public"
    return None


class RefusedAddress(OSError):
    """Every address the webhook's host resolved to is one deliveries may not reach."""


class GuardedResolver(AbstractResolver):
    """Resolves as aiohttp does, then keeps only the addresses the policy allows: the
    connector connects to what this returns and nothing else, so the address checked is
    the address connected to (a name that resolves to a private address is refused, and
    DNS cannot answer differently between the check and the connection)."""

    def __init__(self, policy: WebhookPolicy) -> None:
        self._policy = policy
        self._resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        allowed, refused = [], []
        for result in found:
            reason = self._policy.refuses(ipaddress.ip_address(result["host"]), host)
            if reason is None:
                allowed.append(result)
            else:
                refused.append(reason)
        if not allowed:
            raise RefusedAddress(f"{host} resolves to {refused[0] if refused else 'nothing'}")
        return allowed

    async def close(self) -> None:
        await self._resolver.close()
