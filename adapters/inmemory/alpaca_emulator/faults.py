"""Faults the emulator can inject, and what it records of each request."""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

FaultKind = Literal["timeout", "status", "drop_after_accept"]


@dataclass
class Fault:
    """A failure to inject into the next `times` matching requests.

    Attributes:
        kind: "timeout" hangs without answering (and without processing) past the client's timeout;
            "status" answers `status` (5xx or 429, with `Retry-After` when `retry_after` is set) without
            processing; "drop_after_accept" processes the request, then closes the connection unanswered.
        method: HTTP method to match.
        path: path to match (shell-style wildcards allowed, e.g. "/v2/orders/*").
        times: how many matching requests fail.
        status: HTTP status of a "status" fault.
        retry_after: `Retry-After` value (seconds) of a "status" fault.
    """

    kind: FaultKind
    method: str = "POST"
    path: str = "/v2/orders"
    times: int = 1
    status: int = 503
    retry_after: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("timeout", "status", "drop_after_accept"):
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.times < 1:
            raise ValueError(f"times must be >= 1, got {self.times}")
        self.method = self.method.upper()

    def matches(self, method: str, path: str) -> bool:
        """Whether a request to `method path` is hit by this fault."""
        return method.upper() == self.method and fnmatch.fnmatchcase(path, self.path)


class FaultBook:
    """Injected faults, consumed by matching requests (thread-safe)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        """Inject `fault` (after the ones already waiting)."""
        with self._lock:
            self._faults.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, its count decremented (removed at zero), or None."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        """Forget every waiting fault."""
        with self._lock:
            self._faults.clear()


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the emulator saw it, minus the key values.

    Attributes:
        method, path, query: the request line.
        headers: headers with the key headers removed.
        json: the parsed body (None when empty).
        had_keys: whether both key headers were present.
        at: the emulator's time when the request arrived.
        status: the status answered (None when the connection was dropped or left hanging).
        fault: the kind of fault injected into it, if any.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    json: Any
    had_keys: bool
    at: datetime
    status: int | None = None
    fault: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def param(self, name: str) -> str | None:
        """The single value of query parameter `name`, or None."""
        values = self.query.get(name)
        return values[0] if values else None
