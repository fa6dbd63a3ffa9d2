"""Images by URL: fetched only from the hosts ``http.url_fetch_hosts`` allows.

An entry of ``http.url_fetch_hosts`` is a host name (``images.example.com``), a
host pattern (``*.example.com``: any sub-domain; ``*`` alone: any name), an IP
address (``192.168.1.20``) or a network in CIDR form (``10.0.0.0/8``); see
:mod:`edged.core.hosts`. A URL is
fetched when its host matches a name or pattern, or when its host is an address,
or resolves only to addresses, inside a listed network. Whatever the list says, an
address that is link-local (``169.254.0.0/16``, ``fe80::/10`` — cloud metadata
services live there), unspecified or multicast is never reached.

The check is made where the connection is made: the client session's resolver
hands out only allowed addresses, so a name that resolves differently at connect
time (DNS rebinding) cannot slip through. Redirects are followed (at most
:data:`MAX_REDIRECTS`) only to URLs that pass the same check. The body obeys
``http.max_body_bytes`` (413 beyond) and the whole fetch ``http.url_fetch_timeout_s``.
Every refusal is a 400 that names the setting.
"""

from __future__ import annotations

import fnmatch
import functools
import ipaddress
import socket
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from edged.core.errors import InputError, TooLargeError
from edged.core.hosts import IpAddress, IpNetwork, parse_host_entry

MAX_REDIRECTS = 3
_CHUNK = 1 << 16
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def _never(ip: IpAddress) -> bool:
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    return ip.is_link_local or ip.is_unspecified or ip.is_multicast


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Which URLs may be fetched (see the module docstring)."""

    patterns: tuple[str, ...] = ()
    networks: tuple[IpNetwork, ...] = ()

    @classmethod
    def from_entries(cls, entries: tuple[str, ...]) -> FetchPolicy:
        parsed = [parse_host_entry(e) for e in entries]
        return cls(
            patterns=tuple(p for p in parsed if isinstance(p, str)),
            networks=tuple(p for p in parsed if not isinstance(p, str)),
        )

    def describe(self) -> list[str]:
        return [*self.patterns, *(str(n) for n in self.networks)]

    def name_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(fnmatch.fnmatchcase(host, p) for p in self.patterns)

    def address_allowed(self, ip: IpAddress, *, by_name: bool) -> bool:
        """``ip`` may be connected to (a host allowed ``by_name`` may use any address
        that is not link-local, unspecified or multicast)."""
        if _never(ip):
            return False
        return by_name or any(ip in n for n in self.networks)

    def refusal(self, name: str, url: str, why: str) -> InputError:
        msg = (
            f"{name}: fetching images from URLs is allowed only from http.url_fetch_hosts "
            f"{self.describe()}; {url!r} {why}"
        )
        return InputError(msg)

    def check_url(self, url: str, name: str) -> None:
        """Raise InputError unless ``url`` is http(s) to a host this policy may allow."""
        parsed = urllib.parse.urlsplit(url)
        host = (parsed.hostname or "").lower()
        if parsed.scheme not in ("http", "https") or not host:
            raise self.refusal(name, url, "is not an http(s) URL with a host")
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is not None:
            if _never(ip):
                raise self.refusal(name, url, "is a link-local/metadata address, never fetched")
            if not self.address_allowed(ip, by_name=self.name_allowed(host)):
                raise self.refusal(name, url, f"has host {host!r}, which is not listed")
            return
        if not self.name_allowed(host) and not self.networks:
            raise self.refusal(name, url, f"has host {host!r}, which is not listed")


@functools.lru_cache(maxsize=8)
def policy_for(entries: tuple[str, ...]) -> FetchPolicy:
    """The policy of an ``http.url_fetch_hosts`` list (validated with the settings)."""
    return FetchPolicy.from_entries(entries)


class PolicyResolver(AbstractResolver):
    """The system resolver, handing out only the addresses the current policy allows
    (``current()`` reads the running settings, so a reload applies at once)."""

    def __init__(self, current: Callable[[], FetchPolicy]) -> None:
        self.current = current
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        policy = self.current()
        by_name = policy.name_allowed(host)
        allowed = [r for r in found if policy.address_allowed(_ip(r["host"]), by_name=by_name)]
        if not allowed:
            addresses = sorted({r["host"] for r in found})
            msg = f"{host} resolves to {addresses}, none of them allowed by http.url_fetch_hosts"
            raise OSError(msg)
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def _ip(text: str) -> IpAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])


async def fetch(
    session: aiohttp.ClientSession,
    policy: FetchPolicy,
    url: str,
    name: str,
    *,
    max_bytes: int,
    timeout_s: float,
) -> bytes:
    """The body of ``url`` (status 200), following redirects that ``policy`` allows.

    ``session`` must resolve through a :class:`PolicyResolver` (see
    :func:`open_session`). Raises InputError (400) naming the setting for what is
    refused or fails, TooLargeError (413) over ``max_bytes``.
    """
    policy.check_url(url, name)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        for _ in range(MAX_REDIRECTS + 1):
            async with session.get(url, allow_redirects=False, timeout=timeout) as resp:
                if resp.status in _REDIRECTS and "Location" in resp.headers:
                    url = urllib.parse.urljoin(url, resp.headers["Location"])
                    policy.check_url(url, name)
                    continue
                if resp.status != 200:
                    msg = f"{name}: fetching {url}: expected HTTP 200, got {resp.status}"
                    raise InputError(msg)
                return await _body(resp, max_bytes)
    except aiohttp.ClientConnectorError as exc:
        host = urllib.parse.urlsplit(url).hostname or ""
        if not policy.name_allowed(host):  # allowed only if it resolved into a network
            why = f"has host {host!r}, not listed and not reachable in a listed network"
            raise policy.refusal(name, url, f"{why} ({exc.os_error})") from exc
        msg = f"{name}: fetching {url} failed: {exc.os_error}"
        raise InputError(msg) from exc
    except TimeoutError as exc:
        msg = (
            f"{name}: fetching {url}: expected an answer within "
            f"http.url_fetch_timeout_s = {timeout_s:g} s, got none"
        )
        raise InputError(msg) from exc
    except aiohttp.ClientError as exc:
        msg = f"{name}: fetching {url} failed: {type(exc).__name__}: {exc}"
        raise InputError(msg) from exc
    msg = f"{name}: fetching {url}: expected at most {MAX_REDIRECTS} redirects, got more"
    raise InputError(msg)


async def _body(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    if resp.content_length is not None and resp.content_length > limit:
        raise _too_large(resp.content_length, limit)
    buf = bytearray()
    async for chunk in resp.content.iter_chunked(_CHUNK):
        buf += chunk
        if len(buf) > limit:
            raise _too_large(len(buf), limit)
    return bytes(buf)


def _too_large(size: int, limit: int) -> TooLargeError:
    return TooLargeError(
        f"fetched image: expected at most {limit} bytes (http.max_body_bytes), got {size}"
    )


def open_session(current: Callable[[], FetchPolicy]) -> aiohttp.ClientSession:
    """A client session for URL inputs: it connects only to addresses ``current()``
    allows, and keeps no cookies (one request's must not ride along with the next)."""
    connector = aiohttp.TCPConnector(resolver=PolicyResolver(current))
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
