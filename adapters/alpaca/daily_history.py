"""`AlpacaDailyHistory`: past daily bars of one symbol from Alpaca's GET /v2/stocks/bars, a page at a time.

Each page of split-adjusted bars (``adjustment=split``: the prices a backtest trades) is joined, session by
session, to the same sessions adjusted for splits and dividends (``adjustment=all``), whose close becomes the
adjusted close the backtest's loader derives cash dividends from. Pages follow ``next_page_token``; throttling
(429, honouring ``Retry-After``), server errors and timeouts are retried with back-off by `AlpacaRest`, the HTTP
layer every Alpaca adapter shares; bars are read through alpaca-py's `Bar` model (`data_mapping.bar_from_json`).
Daily bars are stamped at midnight New York time, so a day's bar is asked for from that instant.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, datetime, time
from typing import Any
from urllib.parse import quote

import httpx

from adapters.alpaca.config import AlpacaConfig
from adapters.alpaca.data_mapping import bar_from_json
from adapters.alpaca.errors import is_sip_refusal
from adapters.alpaca.market_data import NEW_YORK
from adapters.alpaca.rest import AlpacaRest, Sleep
from adapters.alpaca.sdk import as_object
from adapters.alpaca.wire import rfc3339
from domain.errors import BrokerError, ConfigurationError, DataError, NotFoundError
from domain.models.bar import Bar
from domain.ports.daily_history import DailyRecord

BARS = "/v2/stocks/bars"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), NEW_YORK)


def _day(bar: Bar) -> date:
    return bar.at.astimezone(NEW_YORK).date()


class AlpacaDailyHistory:
    """Daily bars from Alpaca's market data API (the daily-bars feed of `config`, SIP by default).

    Args:
        config: keys, endpoints, feed, timeout and retry policy.
        page_limit: bars per page (Alpaca's maximum is 10000).
        sleep: awaited between retries (tests inject a recorder).
        transport: optional httpx transport.
    """

    def __init__(self, config: AlpacaConfig, *, page_limit: int = 10_000, sleep: Sleep = asyncio.sleep,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not 1 <= page_limit <= 10_000:
            raise ValueError(f"page_limit must be between 1 and 10000, got {page_limit}")
        self._data = AlpacaRest(config, config.data_base_url, sleep=sleep, transport=transport)
        self._trading = AlpacaRest(config, config.trading_base_url, sleep=sleep, transport=transport)
        self._feed = config.bars_feed
        self._page_limit = page_limit

    def __repr__(self) -> str:
        return f"AlpacaDailyHistory(feed={self._feed!r}, page_limit={self._page_limit})"

    async def aclose(self) -> None:
        """Close both connection pools."""
        await self._data.aclose()
        await self._trading.aclose()

    async def pages(self, symbol: str, start: date, end: date) -> AsyncIterator[list[DailyRecord]]:
        """The sessions of `symbol` from `start` to `end` (inclusive), oldest first, one non-empty page at a time.

        Raises:
            BrokerError: Alpaca refused (e.g. 400 for a malformed symbol) or kept failing after the retries.
            DataError: a bar cannot be read.
            ConfigurationError: the data plan refuses this feed (names QUORUM_BROKER__BARS_FEED).
        """
        async for bars in self._bar_pages(symbol, start, end, "split"):
            if not bars:
                continue
            adjusted: dict[date, float] = {}
            async for page in self._bar_pages(symbol, _day(bars[0]), _day(bars[-1]), "all"):
                adjusted.update((_day(b), b.close) for b in page)
            yield [DailyRecord(_day(b), b.open, b.high, b.low, b.close, b.volume, adjusted.get(_day(b)))
                   for b in bars]

    async def listed(self, symbol: str) -> bool | None:
        """Whether Alpaca lists `symbol` as an asset (GET /v2/assets/{symbol}); None when it cannot tell."""
        try:
            await self._trading.request("GET", f"/v2/assets/{quote(symbol, safe='')}")
        except NotFoundError:
            return False
        except BrokerError:
            return None
        return True

    async def _bar_pages(self, symbol: str, start: date, end: date, adjustment: str) -> AsyncIterator[list[Bar]]:
        params: dict[str, Any] = {
            "symbols": symbol,
            "timeframe": "1Day",
            "start": rfc3339(_midnight(start)),
            "end": rfc3339(_midnight(end)),
            "limit": self._page_limit,
            "adjustment": adjustment,
            "feed": self._feed,
            "sort": "asc",
        }
        seen: set[str] = set()
        while True:
            body = as_object(await self._page(params), "bars", DataError)
            items = (body.get("bars") or {}).get(symbol) or []
            yield sorted((bar_from_json(symbol, i) for i in items), key=lambda b: b.at)
            token = body.get("next_page_token")
            if not token:
                return
            if token in seen:
                raise DataError(f"Alpaca repeated a bars page token for {symbol}; stopping")
            seen.add(token)
            params = {**params, "page_token": token}

    async def _page(self, params: dict[str, Any]) -> Any:
        try:
            return await self._data.request("GET", BARS, params=params)
        except BrokerError as exc:
            if params["feed"] != "sip" or not is_sip_refusal(exc):
                raise
            raise ConfigurationError(
                f"Alpaca refused SIP daily bars for this account's data plan ({exc}); set "
                "QUORUM_BROKER__BARS_FEED=iex (volumes become IEX-only, a small share of consolidated volume) or "
                "subscribe to a plan with SIP history"
            ) from None
