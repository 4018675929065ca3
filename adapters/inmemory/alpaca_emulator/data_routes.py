"""The market data API on the emulator: /v2/stocks/bars, snapshots, latest trades and quotes.

Nothing later than the emulator's clock is ever returned: a daily bar once its session has closed, an
intraday bar once complete, trades and quotes from the latest price the exchange has seen. Intraday bars
come at the resolution of the loaded data: a coarser timeframe is aggregated from them, a finer one gets
them as they are. Trade counts and VWAPs are not in the data: `n` is 0 and `vw` the typical price.
"""

from __future__ import annotations

import base64
import bisect
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from adapters.inmemory.alpaca_emulator.state import (
    EmulatorState,
    Query,
    Reply,
    integer,
    ok,
    param,
    refused,
    timestamp,
)
from adapters.inmemory.exchange.rejections import CODE_REQUEST, Rejection, invalid
from adapters.inmemory.exchange.rules import NEW_YORK
from adapters.inmemory.replay.timeline import run_sync
from domain.models.bar import Bar

_TIMEFRAME = re.compile(r"^(\d+)(Min|T|Hour|H|Day|D)$")
_EPOCH = datetime(1900, 1, 1, tzinfo=NEW_YORK)
Row = dict[str, Any]


def handle(state: EmulatorState, method: str, path: str, query: Query, body: Any) -> Reply | None:
    """The answer to a market data request, or None."""
    if method != "GET" or not path.startswith("/v2/stocks/"):
        return None
    try:
        symbols = [s.strip().upper() for s in (param(query, "symbols") or "").split(",") if s.strip()]
        if path == "/v2/stocks/bars":
            return bars(state, symbols, query)
        if path == "/v2/stocks/snapshots":
            return ok({s: snap for s in symbols if (snap := snapshot(state, s)) is not None})
        if path == "/v2/stocks/trades/latest":
            return ok({"trades": {s: t for s in symbols if (t := _trade(state, s)) is not None}})
        if path == "/v2/stocks/quotes/latest":
            return ok({"quotes": {s: q for s in symbols if (q := _quote(state, s)) is not None}})
    except Rejection as rejection:
        return refused(rejection)
    return None


def bars(state: EmulatorState, symbols: list[str], query: Query) -> Reply:
    """GET /v2/stocks/bars with `next_page_token` paging (rows ordered by symbol, then time)."""
    if not symbols:
        raise invalid("symbols is required", CODE_REQUEST)
    minutes = _minutes(param(query, "timeframe"))
    now = state.now()
    start = timestamp(query, "start") or _EPOCH
    end = min(timestamp(query, "end") or now, now)
    descending = (param(query, "sort") or "asc") == "desc"
    limit = integer(query, "limit", 1000, 10000)
    rows: list[tuple[str, Row]] = []
    for symbol in sorted(set(symbols)):
        found = _daily(state, symbol, start, end) if minutes is None else _intraday(state, symbol, minutes, start, end)
        rows += [(symbol, r) for r in (reversed(found) if descending else found)]
    offset = _offset(param(query, "page_token"))
    page = rows[offset:offset + limit]
    out: dict[str, list[Row]] = {}
    for symbol, row in page:
        out.setdefault(symbol, []).append(row)
    more = offset + limit < len(rows)
    token = base64.urlsafe_b64encode(str(offset + limit).encode()).decode() if more else None
    return ok({"bars": out, "next_page_token": token})


def snapshot(state: EmulatorState, symbol: str) -> Row | None:
    """Latest trade and quote, the latest complete intraday bar, today's bar so far and the previous one."""
    trade = _trade(state, symbol)
    if trade is None:
        return None
    now = state.now()
    closed = _daily(state, symbol, _EPOCH, now)
    day = state.calendar.next_session(state.calendar.previous_session(now))
    today: Row | None = None
    if state.calendar.session_open(day) <= now:
        done = [b for b in state.timeline.bars_between(symbol, state.calendar.session_open(day), now)
                if b.at + state.timeline.intervals[symbol] <= now]
        series = state.timeline.daily(day).get(symbol)
        if done:
            today = _aggregate(done, _midnight(day))
        elif series is not None:
            o = float(series[0])
            today = _row(_midnight(day), o, o, o, o, 0.0)
    minute = None
    if symbol in state.timeline.intervals:
        recent = state.timeline.bars_between(symbol, now - timedelta(days=5), now)
        complete = [b for b in recent if b.at + state.timeline.intervals[symbol] <= now]
        minute = _row(complete[-1].at, complete[-1].open, complete[-1].high, complete[-1].low, complete[-1].close,
                      complete[-1].volume) if complete else None
    daily_bar = today if today is not None else (closed[-1] if closed else None)
    previous = closed[-1] if today is not None and closed else (closed[-2] if len(closed) > 1 else None)
    return {"latestTrade": trade, "latestQuote": _quote(state, symbol), "minuteBar": minute, "dailyBar": daily_bar,
            "prevDailyBar": previous}


def _daily(state: EmulatorState, symbol: str, start: datetime, end: datetime) -> list[Row]:
    """Daily bars with `start <= t <= end` whose session has closed by now (`t` is midnight New York)."""
    series = state.timeline.market.series(symbol)
    if series is None:
        return []
    now = state.now()
    first = bisect.bisect_left(series.days, start.astimezone(NEW_YORK).date())
    last = bisect.bisect_right(series.days, end.astimezone(NEW_YORK).date())
    out = []
    for i in range(first, last):
        day = series.days[i]
        at = _midnight(day)
        if start <= at <= end and state.calendar.session_close(day) <= now:
            out.append(_row(at, series.open[i], series.high[i], series.low[i], series.close[i], series.volume[i]))
    return out


def _intraday(state: EmulatorState, symbol: str, minutes: int, start: datetime, end: datetime) -> list[Row]:
    found: dict[str, list[Bar]] = run_sync(state.timeline.market.minute_bars([symbol], start=start, end=end))
    native = found.get(symbol, [])
    length = state.timeline.intervals.get(symbol, timedelta(minutes=1))
    step = timedelta(minutes=minutes)
    if step <= length or step % length:
        return [_row(b.at, b.open, b.high, b.low, b.close, b.volume) for b in native]
    buckets: dict[datetime, list[Bar]] = {}
    for b in native:
        local = b.at.astimezone(NEW_YORK)
        midnight = datetime.combine(local.date(), time(0), NEW_YORK)
        key = midnight + step * ((local - midnight) // step)
        buckets.setdefault(key, []).append(b)
    return [_aggregate(group, key) for key, group in sorted(buckets.items()) if key + step <= end]


def _aggregate(group: list[Bar], at: datetime) -> Row:
    return _row(at, group[0].open, max(b.high for b in group), min(b.low for b in group), group[-1].close,
                sum(b.volume for b in group))


def _row(at: datetime, o: float, h: float, lo: float, c: float, v: float) -> Row:
    return {"t": _z(at), "o": float(o), "h": float(h), "l": float(lo), "c": float(c), "v": float(v), "n": 0,
            "vw": round((float(h) + float(lo) + float(c)) / 3, 4)}


def _trade(state: EmulatorState, symbol: str) -> Row | None:
    px = state.exchange.last_prices.get(symbol)
    at = state.exchange.price_time(symbol)
    if px is None or at is None:
        return None
    return {"t": _z(at), "x": "V", "p": float(px), "s": 100, "c": ["@"], "i": 1, "z": "C"}


def _quote(state: EmulatorState, symbol: str) -> Row | None:
    px = state.exchange.last_prices.get(symbol)
    at = state.exchange.price_time(symbol)
    if px is None or at is None:
        return None
    half = px * state.spread_bps / Decimal(20000)
    return {"t": _z(at), "ax": "V", "ap": float(round(px + half, 4)), "as": 1, "bx": "V",
            "bp": float(round(px - half, 4)), "bs": 1, "c": ["R"], "z": "C"}


def _minutes(timeframe: str | None) -> int | None:
    """Minutes of an intraday timeframe, or None for daily bars."""
    match = _TIMEFRAME.match(timeframe or "")
    if match is None:
        raise invalid(f"invalid timeframe {timeframe!r}", CODE_REQUEST)
    n, unit = int(match.group(1)), match.group(2)
    if n < 1:
        raise invalid(f"invalid timeframe {timeframe!r}", CODE_REQUEST)
    if unit in ("Day", "D"):
        if n != 1:
            raise invalid(f"timeframe {timeframe} is not supported by the emulator")
        return None
    return n * 60 if unit in ("Hour", "H") else n


def _offset(token: str | None) -> int:
    if token is None:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        raise invalid(f"invalid page_token {token!r}", CODE_REQUEST) from None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), NEW_YORK)


def _z(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
