"""API key guard.

- Mutating requests (POST, PUT, PATCH, DELETE) need the X-API-Key header equal to
  QUORUM_API_KEY. Both sides are hashed with SHA-256 and compared with
  `hmac.compare_digest`, so the time taken says nothing about the key, not even its length.
  Without QUORUM_API_KEY every mutating request is refused with 503 and a message
  saying to set it.
- Reads (GET, HEAD) are open to loopback clients (127.0.0.0/8, ::1, ::ffff:127.0.0.1)
  when `open_reads_on_loopback` is on (QUORUM_API__OPEN_READS_ON_LOOPBACK, off in the
  production compose) and need the key from anywhere else. The client address is the
  TCP peer of the connection (ASGI scope "client"). A request that carries a proxy
  header (Forwarded, X-Forwarded-For, X-Real-IP) is never taken as loopback, whatever
  its peer: a reverse proxy on the same host cannot make its remote clients look local,
  whether or not uvicorn rewrote the address from the header.
- A key that is sent is always checked, also on reads from loopback: a wrong key is 401.
- The key is never logged; refusals log the client address, method and path only.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping

import structlog
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, ServiceUnavailableException
from litestar.handlers.base import BaseRouteHandler

log = structlog.get_logger(__name__)
API_KEY_HEADER = "X-API-Key"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")
_CHALLENGE = {"WWW-Authenticate": f'ApiKey header="{API_KEY_HEADER}"'}


def is_loopback(host: str | None) -> bool:
    """Whether `host` is a loopback IP address (IPv4, IPv6 or IPv4-mapped IPv6)."""
    if not host:
        return False
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def is_proxied(headers: Mapping[str, str]) -> bool:
    """Whether the request says it was forwarded by a proxy (Forwarded, X-Forwarded-For or X-Real-IP)."""
    return any(name in headers for name in PROXY_HEADERS)


def key_matches(expected: str, given: str) -> bool:
    """Constant-time comparison of two keys (of any lengths)."""
    return hmac.compare_digest(hashlib.sha256(expected.encode()).digest(), hashlib.sha256(given.encode()).digest())


class ApiKeyGuard:
    """A Litestar guard enforcing the rules of this module.

    Args:
        api_key: QUORUM_API_KEY, or None when it is not set.
        open_reads_on_loopback: whether loopback clients may read without the key.
    """

    def __init__(self, api_key: str | None, *, open_reads_on_loopback: bool = True) -> None:
        self._key = api_key or None
        self._open_reads = open_reads_on_loopback

    def __call__(self, connection: ASGIConnection, _: BaseRouteHandler) -> None:  # type: ignore[type-arg]
        """Let the request through or raise 401 / 503."""
        method = str(connection.scope.get("method", "GET")).upper()
        host = connection.client.host if connection.client else None
        given = connection.headers.get(API_KEY_HEADER)
        path = connection.scope.get("path", "")
        if method in SAFE_METHODS:
            if given is None and self._open_reads and is_loopback(host) and not is_proxied(connection.headers):
                return
            if given is None:
                log.info("api_read_refused", client=host, method=method, path=path)
                raise NotAuthorizedException(detail=self._read_refusal(host, connection.headers), headers=_CHALLENGE)
        elif self._key is None:
            log.warning("api_write_refused_no_key_configured", client=host, method=method, path=path)
            raise ServiceUnavailableException(
                detail="mutating endpoints are disabled: set QUORUM_API_KEY and send it in the "
                       f"{API_KEY_HEADER} header")
        elif given is None:
            log.info("api_write_refused", client=host, method=method, path=path, why="missing key")
            raise NotAuthorizedException(detail=f"missing {API_KEY_HEADER} header", headers=_CHALLENGE)
        if self._key is None or not key_matches(self._key, given or ""):
            log.info("api_request_refused", client=host, method=method, path=path, why="wrong key")
            unset = "" if self._key is not None else " (QUORUM_API_KEY is not set on the server)"
            raise NotAuthorizedException(detail=f"invalid {API_KEY_HEADER}{unset}", headers=_CHALLENGE)

    def _read_refusal(self, host: str | None, headers: Mapping[str, str]) -> str:
        if not self._open_reads or not is_loopback(host):
            why = "reads from a non-loopback client" if self._open_reads else "reads"
        else:
            why = "reads through a proxy (Forwarded, X-Forwarded-For or X-Real-IP) are not loopback and"
        return f"{why} need the {API_KEY_HEADER} header"
