"""What the API handlers need: `ApiServices` and readiness checks (the discovery port is
`domain.ports.discovery_api.DiscoveryApi`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from application.currency import CurrencyDisplay
from application.cycle_requests import CycleRequestService
from application.queries import ReadModels
from domain.memory import DEFAULT_SCOPE
from domain.ports.broker import Broker
from domain.ports.clock import Clock, MarketCalendar
from domain.ports.discovery_api import DiscoveryApi
from domain.ports.market_data import MarketData
from domain.ports.queue import EvalRequests
from domain.ports.uow import UnitOfWorkFactory
from domain.risk.config import BreakerSettings
from entrypoints.api.metrics import ApiMetrics
from entrypoints.api.readiness import ReadinessCheck

__all__ = ["ApiServices", "ReadinessCheck"]


@dataclass
class ApiServices:
    """Everything the HTTP API needs, built by `entrypoints.api.wiring.build_api_services` (or by hand in tests).

    Attributes:
        uow_factory: opens units of work.
        cycle_requests: queues cycles.
        broker: the account's broker.
        calendar: the exchange calendar.
        clock: the time source ("now" of every request).
        breaker_settings: thresholds re-checked when a person approves a breaker resume.
        api_key: the value of QUORUM_API_KEY; None disables every mutating endpoint (503).
        scope: the scope the API reports on and acts in.
        market: quotes for valuing positions (optional).
        discovery: the discovery service; None answers 503 "discovery not configured".
        evals: takes eval runs asked for by POST /api/evals/run; None answers 503 "evals not configured".
        readiness: checks of /ready (database, Redis, broker).
        metrics: the Prometheus registry and its feeds (built from the rest when None).
        open_reads_on_loopback: whether GET endpoints answer loopback clients (not through a proxy) without the key.
        allowed_hosts: Host header names answered besides localhost, 127.0.0.1 and [::1] ('*': any).
        currency: the currency /api/portfolio and /api/performance also show amounts in (USD only by default).
    """

    uow_factory: UnitOfWorkFactory
    cycle_requests: CycleRequestService
    broker: Broker
    calendar: MarketCalendar
    clock: Clock
    breaker_settings: BreakerSettings
    api_key: str | None = None
    scope: str = DEFAULT_SCOPE
    market: MarketData | None = None
    discovery: DiscoveryApi | None = None
    evals: EvalRequests | None = None
    readiness: Sequence[ReadinessCheck] = ()
    metrics: ApiMetrics | None = None
    open_reads_on_loopback: bool = True
    allowed_hosts: Sequence[str] = ()
    currency: CurrencyDisplay = field(default_factory=CurrencyDisplay)
    read_models: ReadModels = field(init=False)

    def __post_init__(self) -> None:
        self.read_models = ReadModels(self.uow_factory, self.scope, self.broker, self.calendar, self.market)
        if self.metrics is None:
            self.metrics = ApiMetrics(self.uow_factory, self.scope, self.clock)
        if self.api_key is not None and not self.api_key.strip():
            self.api_key = None

    @property
    def prometheus(self) -> ApiMetrics:
        """The metrics (always set after construction)."""
        if self.metrics is None:
            raise RuntimeError("ApiServices.metrics is set in __post_init__")
        return self.metrics
