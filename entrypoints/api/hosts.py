"""The Host header check against DNS rebinding: the API answers only the host names it is configured for.

A page on an attacker's domain that re-points its name at 127.0.0.1 makes the browser send requests to the API with
the attacker's host name; answering only known names keeps such a page from reading anything. Litestar's own
`AllowedHostsConfig` matches the Host header with its port (``localhost:8000`` is not ``localhost``), so this
middleware compares the name without the port: exact names, ``*.example.com`` for sub-domains, ``*`` for any.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.response.base import ASGIResponse
from litestar.types import ASGIApp, Receive, Scope, Send

log = structlog.get_logger(__name__)
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
_REFUSED = b'{"error":"invalid host header","detail":"the API answers only its configured host names"}'


def host_name(header: str) -> str:
    """The host name of a Host header, lower-case and without its port (an IPv6 address keeps its brackets)."""
    value = header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        rest = value[end + 1:]
        return value[: end + 1] if end > 0 and (not rest or (rest[0] == ":" and rest[1:].isdigit())) else value
    name, colon, port = value.rpartition(":")
    if not colon or value.count(":") > 1:
        return value
    return name if port.isdigit() else value


class AllowedHosts:
    """Which Host header names are answered.

    Args:
        extra: names besides localhost, 127.0.0.1 and [::1]: exact names, ``*.domain`` for its sub-domains, or
            ``*`` for any.

    Raises:
        ValueError: a wildcard anywhere but at the start (``*.``) or an empty name.
    """

    def __init__(self, extra: Iterable[str] = ()) -> None:
        names = [host_name(n) for n in (*LOCAL_HOSTS, *extra)]
        for name in names:
            if not name or ("*" in name and name != "*" and not (name.startswith("*.") and "*" not in name[2:])):
                raise ValueError(f"an allowed host is a name, '*.domain' or '*', got {name!r}")
        self.any = "*" in names
        self._exact = frozenset(n for n in names if not n.startswith("*"))
        self._suffixes = tuple(n[1:] for n in names if n.startswith("*."))

    def allows(self, header: str | None) -> bool:
        """Whether a request with this Host header (None: no header) is answered."""
        if self.any:
            return True
        if not header:
            return False
        name = host_name(header)
        return name in self._exact or any(name.endswith(s) and len(name) > len(s) for s in self._suffixes)


class AllowedHostsMiddleware(ASGIMiddleware):
    """Answers 400 to an HTTP request whose Host header names a host that is not allowed."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, hosts: AllowedHosts) -> None:
        self._hosts = hosts

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Pass the request on, or refuse it with 400."""
        host = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == b"host"), None)
        if self._hosts.allows(host):
            await next_app(scope, receive, send)
            return
        log.info("api_host_refused", host=(host or "")[:100], path=str(scope.get("path", ""))[:200])
        await ASGIResponse(body=_REFUSED, status_code=400, media_type="application/json")(scope, receive, send)
