"""The rules of the `[api]` keys that name hosts or hold the token, and their environment overrides.

A container sets the API from its environment (the names below); each value is checked by the rule of the key it
replaces, and a bad one is refused naming the variable (`continuity start` exits 1, the watchdog and worker 78).
An empty variable counts as unset.
"""

from __future__ import annotations

import re
import socket

from ._contract import API_ALLOWED_HOSTS_ENV, API_HOST_ENV, API_PORT_ENV, API_TOKEN_ENV

# variable -> the [api] key it replaces
API_ENV = {
    API_HOST_ENV: "host",
    API_PORT_ENV: "port",
    API_TOKEN_ENV: "token",
    API_ALLOWED_HOSTS_ENV: "allowed_hosts",
}
TOKEN_MIN, TOKEN_MAX = 16, 4096
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_VISIBLE_ASCII = re.compile(r"^[\x21-\x7e]+$")
LOOPBACK_NAMES = frozenset({"localhost", "::1", "[::1]"})


def _ip_family(text: str) -> int | None:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, text)
        except (OSError, ValueError):
            continue
        return family
    return None


def _is_dns_name(text: str) -> bool:
    name = text[:-1] if text.endswith(".") else text
    return 0 < len(name) <= 253 and all(_LABEL.match(label) for label in name.lower().split("."))


def host_problem(value: str) -> str | None:
    """Why `value` cannot be an address to listen on (an IP address or a host name), or None."""
    if _ip_family(value) is not None or _is_dns_name(value):
        return None
    return f"must be an IP address (127.0.0.1, 0.0.0.0, ::) or a host name, got {value!r}"


def allowed_host(value: str) -> str:
    """The Host header name `value` stands for, lower-case, an IPv6 address in brackets; ValueError when it is not a
    host name or IP address (no port, scheme, path or wildcard)."""
    text = value.strip().lower()
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    family = _ip_family(bare)
    if family == socket.AF_INET6:
        return f"[{bare}]"
    if family is not None or _is_dns_name(text):
        return text.rstrip(".")
    raise ValueError(f"{value!r} is not a host name or IP address (give the name only: no port, scheme or '*')")


def token_problem(value: str) -> str | None:
    """Why `value` cannot be the API's bearer token (empty: one is generated), or None."""
    if not value:
        return None
    if not TOKEN_MIN <= len(value) <= TOKEN_MAX or not _VISIBLE_ASCII.match(value):
        return f"must be {TOKEN_MIN}-{TOKEN_MAX} visible ASCII characters (no spaces), got {len(value)} characters"
    return None


def is_loopback(host: str) -> bool:
    """Is `host` (where the API listens) reachable from this machine only?"""
    return host.lower() in LOOPBACK_NAMES or host.startswith("127.")


class HostGuard:
    """The DNS-rebinding guard: is a Host header the bound address, localhost or an allowed name, with no port or
    the bound port? Shared by the API (api.ApiApp) and its light /metrics path (api_server)."""

    def __init__(self, bound_host: str, port: int, allowed: tuple[str, ...] = ()) -> None:
        names = {"127.0.0.1", "localhost", "[::1]", *(name.lower() for name in allowed)}
        names.add(f"[{bound_host}]" if ":" in bound_host else bound_host.lower())
        self.names, self.port = frozenset(names), port

    def allows(self, value: str | None) -> bool:
        if not value:
            return False
        value = value.strip().lower()
        name, port = value, ""
        if value.startswith("["):
            end = value.find("]")
            name, rest = value[: end + 1], value[end + 1 :]
            if rest:
                if not rest.startswith(":"):
                    return False
                port = rest[1:]
        elif ":" in value:
            name, _, port = value.rpartition(":")
        if port and port != str(self.port):
            return False
        return name in self.names
