"""Host allow-lists: which hosts a URL may name (``http.url_fetch_hosts``).

An entry is a host name (``images.example.com``), a host pattern
(``*.example.com``: any sub-domain; ``*``: any name), an IP address
(``192.168.1.20``, read as a one-address network) or a network in CIDR form
(``10.0.0.0/8``, ``fd00::/8``).
"""

from __future__ import annotations

import ipaddress

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_ACCEPTED = "expected a host name, a pattern like '*.example.com', an IP or a CIDR"


def parse_host_entry(entry: str) -> str | IpNetwork:
    """One allow-list entry: a lower-case host pattern, or a network.

    Raises ValueError saying what is accepted and what came.
    """
    text = entry.strip().lower()
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        pass
    ok_chars = all(c.isalnum() or c in "-.*_" for c in text)
    if not text or not ok_chars:
        msg = f"{_ACCEPTED}, got {entry!r}"
        raise ValueError(msg)
    return text
