"""`AlpacaEmulator`: Alpaca's REST API (trading and market data) on 127.0.0.1, over the exchange model.

It replays history on a clock it controls: `advance_to(at)` processes every price event up to `at` in order
(session opens, intraday bars, session closes) and the live stack under test reads the time from
`emulator.clock`. Requests are served by a stdlib ThreadingHTTPServer (HTTP/1.1 keep-alive); one lock
serialises them with the clock's advances, so the model is only ever touched by one thread at a time.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

import structlog

from adapters.inmemory.alpaca_emulator import account_routes, data_routes, order_routes
from adapters.inmemory.alpaca_emulator.faults import Fault, FaultBook, RecordedRequest
from adapters.inmemory.alpaca_emulator.http import make_handler
from adapters.inmemory.alpaca_emulator.state import EmulatorState, Query, Reply
from adapters.inmemory.exchange import Exchange, ExchangeRules
from adapters.inmemory.market_data import DailyBarMarketData
from adapters.inmemory.replay import ReplayDriver, ReplayedDividends, Timeline, run_sync
from application.dividends import DividendPayment
from domain.models.trading import Fill
from domain.ports.clock import Clock, MarketCalendar
from domain.ports.venue import SimulatedVenue
from domain.risk.config import FeeSettings

log = structlog.get_logger(__name__)
_WARM_UP = timedelta(minutes=1)


class EmulatorClock(Clock):
    """The emulator's time: moved only by `AlpacaEmulator.advance_to`, never backwards."""

    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The emulator's current time (UTC)."""
        with self._lock:
            return self._now

    def _move(self, at: datetime) -> None:
        with self._lock:
            if at < self._now:
                raise ValueError(f"the emulator's clock cannot go back from {self._now} to {at}")
            self._now = at.astimezone(UTC)


class AlpacaEmulator(SimulatedVenue, ReplayedDividends):
    """Alpaca's trading and market data APIs over replayed history. The history's cash dividends are credited
    at the open of each ex-date and show as DIV account activities (`DividendVenue`).

    Args:
        market: daily bars (and the intraday bars it holds) to replay.
        calendar: the exchange calendar.
        start: the emulator's time at the start (aware); history up to it is replayed silently.
        starting_cash: cash of the account (whole cents).
        fees: slippage and fees of every fill.
        rules: the exchange's rule parameters.
        api_key: the APCA-API-KEY-ID every request must carry.
        secret_key: the APCA-API-SECRET-KEY every request must carry.
        spread_bps: quoted spread around the last price (quotes and snapshots).
        hang_seconds: how long a "timeout" fault keeps a request unanswered.
        id_seed: seed of order and activity ids (None: random UUIDs).
    """

    def __init__(
        self,
        market: DailyBarMarketData,
        calendar: MarketCalendar,
        start: datetime,
        starting_cash: Decimal,
        fees: FeeSettings | None = None,
        rules: ExchangeRules | None = None,
        api_key: str = "emulator-key",
        secret_key: str = "emulator-secret",  # noqa: S107 - the local emulator's own key, never a real one
        *,
        spread_bps: Decimal = Decimal(5),
        hang_seconds: float = 30.0,
        id_seed: int | None = None,
    ) -> None:
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError(f"start must be timezone-aware, got {start!r}")
        self._keys = (api_key, secret_key)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._hang_seconds = hang_seconds
        self._faults = FaultBook()
        self._requests: list[RecordedRequest] = []
        self._cursor = calendar.session_open(calendar.previous_session(start)) - _WARM_UP
        self._clock = EmulatorClock(min(self._cursor, start))
        assets = {a.symbol: a for a in run_sync(market.assets()) if a.asset_class == "us_equity"}
        self.exchange = Exchange(
            starting_cash, fees or FeeSettings(), self.clock, calendar, rules=rules,
            fractionable={s: a.fractionable for s, a in assets.items()},
            tradable={s for s, a in assets.items() if a.tradable}, id_seed=id_seed,
        )
        self.timeline = Timeline(market, calendar)
        self._state = EmulatorState(self.exchange, calendar, self.timeline, assets, start.astimezone(UTC),
                                    spread_bps)
        self._driver = ReplayDriver(self.exchange, self.timeline, calendar, self._clock._move, self._cursor)
        self.advance_to(start)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="alpaca-emulator", daemon=True)
        self._started = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def clock(self) -> EmulatorClock:
        """The emulator's time: the live stack under rehearsal reads it."""
        return self._clock

    @property
    def url(self) -> str:
        """Base URL of both the trading and the market data API."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> AlpacaEmulator:
        """Serve in a background thread."""
        if not self._started:
            self._thread.start()
            self._started = True
            log.info("alpaca_emulator_started", url=self.url, at=self.clock.now().isoformat())
        return self

    def stop(self) -> None:
        """Release hanging requests, stop serving and close the socket."""
        self._stopping.set()
        if self._started:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> AlpacaEmulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------ time

    def advance_to(self, at: datetime) -> list[Fill]:
        """Move the clock to `at`, processing every price event up to it in order (see `ReplayDriver.advance_to`).

        Returns:
            The fills made.

        Raises:
            ValueError: `at` is naive or earlier than the emulator's time.
        """
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"advance_to needs an aware datetime, got {at!r}")
        with self._lock:
            if at < self.clock.now():
                raise ValueError(f"cannot go back from {self.clock.now().isoformat()} to {at.isoformat()}")
            return self._driver.advance_to(at)

    def deposit(self, amount: Decimal, at: datetime | None = None, *, journal: bool = False) -> None:
        """Money moved in (positive) or out (negative) at `at` (default: now), listed as a CSD/CSW account
        activity (JNLC when `journal`), the way a transfer from the user's bank shows at Alpaca.

        Raises:
            InsufficientBuyingPowerError: a withdrawal larger than the cash not reserved by open buys.
        """
        with self._lock:
            self.exchange.deposit(amount, at, journal=journal)

    def credit_dividends(self, on: bool) -> None:
        """Credit the history's dividends from now on (the default) or never."""
        with self._lock:
            super().credit_dividends(on)

    def dividend_payments(self) -> list[DividendPayment]:
        """Every dividend credited so far, oldest first."""
        with self._lock:
            return super().dividend_payments()

    # ------------------------------------------------------------------ faults and records

    def inject(self, fault: Fault) -> None:
        """Make the next `fault.times` requests matching `fault` fail as `fault.kind` says."""
        self._faults.add(fault)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (key values removed)."""
        with self._lock:
            return list(self._requests)

    # ------------------------------------------------------------------ hooks of the HTTP handler

    def authorised(self, key: str | None, secret: str | None) -> bool:
        """Whether the key headers are the emulator's."""
        return (key, secret) == self._keys

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The injected fault a request meets, if any."""
        return self._faults.take(method, path)

    def dispatch(self, method: str, path: str, query: Query, body: Any) -> Reply:
        """Answer an authorised request under the lock."""
        with self._lock:
            try:
                for routes in (order_routes, account_routes, data_routes):
                    reply: Reply | None = routes.handle(self._state, method, path, query, body)
                    if reply is not None:
                        return reply
            except Exception as exc:  # a bug in the emulator must answer 500, not kill the connection
                log.exception("alpaca_emulator_error", method=method, path=path)
                return 500, {"code": 50010000, "message": f"emulator error: {type(exc).__name__}: {exc}"}, {}
            return 404, {"code": 40410000, "message": f"endpoint not found: {method} {path}"}, {}

    def record(self, request: RecordedRequest) -> None:
        """Keep a request."""
        with self._lock:
            self._requests.append(request)

    def hang(self, seconds: float | None = None) -> None:
        """Wait without answering (released when the emulator stops)."""
        self._stopping.wait(self._hang_seconds if seconds is None else seconds)

    def now_for_record(self) -> datetime:
        """The emulator's time."""
        return self.clock.now()
