"""`AlpacaMarketData`: assets, daily and minute bars, latest quotes/trades and snapshots from Alpaca.

Multi-symbol endpoints are called in batches of `batch_size` symbols (one request per batch,
sequentially, so a large universe does not burst through the rate limit) and paginated with
``next_page_token``. Throttling (429), server errors and timeouts are retried with back-off by
`AlpacaRest`; what still fails is raised as a typed `BrokerError` and no partial result is
returned.

No look-ahead: a daily bar is returned only once its session has closed at ``as_of`` (the
close comes from the `MarketCalendar` when one is given, else 16:00 New York time, which is
conservative on early-close days); a minute bar only once it has completed by ``end``; a quote
only when it is stamped at or before ``as_of`` (plus a small clock-skew allowance for live use).

Feeds: daily bars come from ``config.bars_feed``, by default SIP (consolidated volume, what the
backtests and the dollar-volume filter assume). Alpaca's free plan serves SIP data older than 15
minutes only (https://docs.alpaca.markets/docs/market-data-faq), so SIP daily bars are read up to
15 minutes before the wall clock, and a session counts as closed only once its close is that old.
Quotes, trades, snapshots and minute bars come from ``config.feed``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import structlog
from alpaca.trading.models import Asset as SdkAsset

from adapters.alpaca.config import AlpacaConfig, Feed
from adapters.alpaca.data_mapping import LatestTrade, Snapshot, bar_from_json, snapshot_from_json, trade_from_json
from adapters.alpaca.errors import is_sip_refusal
from adapters.alpaca.mapping import asset_from_sdk
from adapters.alpaca.rest import AlpacaRest, Sleep
from adapters.alpaca.sdk import as_list, as_object, parsed, validated
from adapters.alpaca.wire import rfc3339
from domain.errors import BrokerError, DataError
from domain.models.bar import Bar
from domain.models.market import Asset, BarSeries, Quote
from domain.ports.clock import MarketCalendar
from domain.ports.market_data import MarketData

log = structlog.get_logger(__name__)

NEW_YORK = ZoneInfo("America/New_York")
REGULAR_CLOSE = time(16, 0)
ONE_MINUTE = timedelta(minutes=1)
SIP_DELAY = timedelta(minutes=15)
"""The free plan serves SIP data older than this (https://docs.alpaca.markets/docs/market-data-faq)."""


def _batches(symbols: Sequence[str], size: int) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(s.strip().upper() for s in symbols if s and s.strip()))
    for i in range(0, len(unique), size):
        yield unique[i : i + size]


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class AlpacaMarketData(MarketData):
    """Alpaca's trading API (assets) and market data API (bars, quotes, trades, snapshots).

    Args:
        config: keys, endpoints, feed, timeout and retry policy.
        calendar: NYSE sessions, for the close of each daily bar; without it 16:00 New York time.
        batch_size: symbols per request on multi-symbol endpoints.
        page_limit: bars per page requested from /v2/stocks/bars (Alpaca's maximum is 10000).
        adjustment: corporate-action adjustment of bars (``raw``, ``split``, ``dividend`` or ``all``).
        quote_skew: how far past ``as_of`` a quote may be stamped and still count (clock skew in live use).
        sleep: awaited between retries (tests inject a recorder).
        transport: optional httpx transport.
        now: the wall clock (UTC), for the 15-minute SIP delay; tests inject a fixed time.
    """

    def __init__(
        self,
        config: AlpacaConfig,
        *,
        calendar: MarketCalendar | None = None,
        batch_size: int = 200,
        page_limit: int = 10_000,
        adjustment: str = "split",
        quote_skew: timedelta = timedelta(seconds=60),
        sleep: Sleep = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
        now: Callable[[], datetime] = _wall_clock,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._trading = AlpacaRest(config, config.trading_base_url, sleep=sleep, transport=transport)
        self._data = AlpacaRest(config, config.data_base_url, sleep=sleep, transport=transport)
        self._feed = config.feed
        self._bars_feed = config.bars_feed
        self._now = now
        self._calendar = calendar
        self._batch_size = batch_size
        self._page_limit = page_limit
        self._adjustment = adjustment
        self._quote_skew = quote_skew
        self._daily_cache: dict[str, tuple[date, int, BarSeries | None]] = {}
        if self._bars_feed == "iex":
            log.warning("alpaca_daily_bars_iex_volume", detail="QUORUM_BROKER__BARS_FEED=iex: daily volumes are "
                        "IEX-only, a small share of the consolidated volume the dollar-volume filter assumes")

    def __repr__(self) -> str:
        return f"AlpacaMarketData(feed={self._feed!r}, bars_feed={self._bars_feed!r}, batch_size={self._batch_size})"

    async def __aenter__(self) -> AlpacaMarketData:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close both connection pools."""
        await self._trading.aclose()
        await self._data.aclose()

    async def assets(self) -> list[Asset]:
        """Active US equity assets (tradable, shortable and fractionable flags as Alpaca reports them)."""
        body = await self._trading.request("GET", "/v2/assets", params={"status": "active", "asset_class": "us_equity"})
        assets = []
        for item in as_list(body, "GET /v2/assets", DataError):
            sdk = validated("an asset", DataError, SdkAsset, **as_object(item, "an asset", DataError))
            assets.append(parsed("an asset", DataError, asset_from_sdk, sdk))
        return assets

    async def daily_bars(self, symbols: Sequence[str], *, as_of: datetime, lookback: int) -> dict[str, BarSeries]:
        """Up to `lookback` daily bars per symbol whose session closed at or before `as_of`.

        Daily bars change once a session: with a calendar, what was read for the same last closed session (and at
        least as long a lookback) is served again without a request; the 13 cycles of a session ask once.

        Raises:
            DataError: Alpaca refused SIP data for the account's plan (names QUORUM_BROKER__BARS_FEED).
        """
        if lookback <= 0:
            return {}
        cutoff = as_of if self._bars_feed == "iex" else min(as_of, self._now() - SIP_DELAY)
        last = self._calendar.previous_session(cutoff) if self._calendar is not None else None
        out: dict[str, BarSeries] = {}
        missing = []
        for symbol in dict.fromkeys(symbols):
            hit = self._daily_cache.get(symbol)
            if last is None or hit is None or hit[0] != last or hit[1] < lookback:
                missing.append(symbol)
            elif hit[2] is not None:
                n = len(hit[2])
                out[symbol] = hit[2].slice(max(0, n - lookback), n)
        if missing:
            fetched = await self._fetch_daily(missing, as_of, cutoff, lookback)
            out.update(fetched)
            if last is not None:
                self._daily_cache.update({s: (last, lookback, fetched.get(s)) for s in missing})
        return out

    async def _fetch_daily(self, symbols: Sequence[str], as_of: datetime, cutoff: datetime,
                           lookback: int) -> dict[str, BarSeries]:
        start = as_of.astimezone(NEW_YORK).date() - timedelta(days=lookback * 3 // 2 + 10)
        start_at = datetime.combine(start, time(0), NEW_YORK)
        raw = await self._bars(symbols, "1Day", start_at, cutoff, self._bars_feed)
        out: dict[str, BarSeries] = {}
        for symbol, bars in raw.items():
            rows = {}
            for bar in bars:
                day = bar.at.astimezone(NEW_YORK).date()
                if self._session_close(day) <= cutoff:
                    rows[day] = (day, bar.open, bar.high, bar.low, bar.close, bar.volume)
            kept = sorted(rows.values())[-lookback:]
            if kept:
                out[symbol] = BarSeries.from_rows(symbol, kept)
        return out

    async def minute_bars(self, symbols: Sequence[str], *, start: datetime, end: datetime) -> dict[str, list[Bar]]:
        """One-minute bars with ``start <= bar.at`` that have completed by `end` (``bar.at + 1 min <= end``)."""
        raw = await self._bars(symbols, "1Min", start, end, self._feed)
        out: dict[str, list[Bar]] = {}
        for symbol, bars in raw.items():
            done = sorted((b for b in bars if b.at >= start and b.at + ONE_MINUTE <= end), key=lambda b: b.at)
            if done:
                out[symbol] = done
        return out

    async def latest_quotes(self, symbols: Sequence[str], *, as_of: datetime) -> dict[str, Quote]:
        """Bid, ask and last trade per symbol, from snapshots; quotes stamped after `as_of` are left out."""
        limit = as_of + self._quote_skew
        out: dict[str, Quote] = {}
        for symbol, snap in (await self.snapshots(symbols)).items():
            if snap.quote is None:
                continue
            if snap.quote.at > limit:
                log.warning("alpaca_quote_after_as_of", symbol=symbol, quote_at=snap.quote.at.isoformat(),
                            as_of=as_of.isoformat())
                continue
            out[symbol] = snap.quote
        return out

    async def latest_trades(self, symbols: Sequence[str]) -> dict[str, LatestTrade]:
        """The last trade per symbol (GET /v2/stocks/trades/latest); unknown symbols are left out."""
        out: dict[str, LatestTrade] = {}
        for batch in _batches(symbols, self._batch_size):
            body = await self._data.request(
                "GET", "/v2/stocks/trades/latest", params={"symbols": ",".join(batch), "feed": self._feed}
            )
            for symbol, item in (as_object(body, "latest trades", DataError).get("trades") or {}).items():
                if item:
                    out[symbol] = trade_from_json(symbol, item)
        return out

    async def snapshots(self, symbols: Sequence[str]) -> dict[str, Snapshot]:
        """Quote, last trade, minute and daily bars per symbol (GET /v2/stocks/snapshots)."""
        out: dict[str, Snapshot] = {}
        for batch in _batches(symbols, self._batch_size):
            body = await self._data.request(
                "GET", "/v2/stocks/snapshots", params={"symbols": ",".join(batch), "feed": self._feed}
            )
            for symbol, item in as_object(body, "snapshots", DataError).items():
                if item:
                    out[symbol] = snapshot_from_json(symbol, item)
        return out

    async def _bars(
        self, symbols: Sequence[str], timeframe: str, start: datetime, end: datetime, feed: Feed
    ) -> dict[str, list[Bar]]:
        out: dict[str, list[Bar]] = defaultdict(list)
        for batch in _batches(symbols, self._batch_size):
            params: dict[str, Any] = {
                "symbols": ",".join(batch),
                "timeframe": timeframe,
                "start": rfc3339(start),
                "end": rfc3339(end),
                "limit": self._page_limit,
                "adjustment": self._adjustment,
                "feed": feed,
                "sort": "asc",
            }
            seen: set[str] = set()
            while True:
                body = as_object(await self._bars_page(params), "bars", DataError)
                for symbol, items in (body.get("bars") or {}).items():
                    out[symbol].extend(bar_from_json(symbol, i) for i in items or [])
                page = body.get("next_page_token")
                if not page:
                    break
                if page in seen:
                    raise DataError(f"Alpaca repeated a bars page token for {batch[0]}..{batch[-1]}; stopping")
                seen.add(page)
                params = {**params, "page_token": page}
        return dict(out)

    async def _bars_page(self, params: dict[str, Any]) -> Any:
        try:
            return await self._data.request("GET", "/v2/stocks/bars", params=params)
        except BrokerError as exc:
            if params["feed"] != "sip" or not is_sip_refusal(exc):
                raise
            raise DataError(
                f"Alpaca refused SIP bars ending {params['end']} for this account's data plan ({exc}). Daily bars "
                "are read from SIP up to 15 minutes before now, which the free plan allows; if the plan has no "
                "SIP history at all, set QUORUM_BROKER__BARS_FEED=iex (daily volumes become IEX-only, a small "
                "share of consolidated volume) or subscribe to a plan with SIP data"
            ) from None

    def _session_close(self, day: date) -> datetime:
        if self._calendar is not None:
            return self._calendar.session_close(day)
        return datetime.combine(day, REGULAR_CLOSE, NEW_YORK).astimezone(UTC)

