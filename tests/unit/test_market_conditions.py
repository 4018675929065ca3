"""Market conditions: VIX or its labelled proxy, SPY trend, sector ranking, and the condition memory
(one record per session, the forward SPY outcome only once it is known, recall without look-ahead)."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import numpy as np
import pytest

from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.market_data import DailyBarMarketData
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from application.market_conditions import MarketConditionService
from domain.market_conditions import compute_conditions
from domain.memory import MemoryFilters
from domain.models.market import BarSeries

CAL = NyseCalendar()
DAYS = CAL.sessions(date(2023, 9, 1), date(2024, 4, 30))
SCOPE = "backtest:conditions"


def bars(symbol: str, closes: list[float] | np.ndarray, days: list[date] | None = None) -> BarSeries:
    """Daily bars ending with the last of `days` (default: the last len(closes) sessions of DAYS)."""
    c = np.asarray(closes, dtype=np.float64)
    d = tuple(days if days is not None else DAYS[-len(c):])
    assert len(d) == len(c)
    return BarSeries(symbol, d, c.copy(), c * 1.01, c * 0.99, c.copy(), np.full(len(c), 1e6))


def rising(n: int = 80, step: float = 0.5) -> np.ndarray:
    return 100.0 + step * np.arange(n)


def alternating(n: int = 80, move: float = 0.01) -> np.ndarray:
    """Closes whose daily returns alternate +move, -move."""
    return 100.0 * np.cumprod([1.0] + [1 + move if i % 2 else 1 - move for i in range(1, n)])


# --- domain: compute_conditions ---------------------------------------------------------------------------------


def test_current_vix_is_used_and_not_labelled_a_proxy() -> None:
    spy = bars("SPY", rising())
    vix = bars("VIX", np.full(80, 14.2))
    c = compute_conditions(spy, vix, {})
    assert c is not None
    assert c.vix == pytest.approx(14.2)
    assert c.vix_is_proxy is False
    assert "VIX 14.2 (calm)" in c.text
    assert "proxy" not in c.text


def _expected_proxy(move: float) -> float:
    # 20 returns alternating +move/-move: mean 0, sample stdev move * sqrt(20/19); annualised, in VIX points
    return move * math.sqrt(20 / 19) * math.sqrt(252) * 100


@pytest.mark.parametrize("vix_case", ["missing", "stale", "nan"])
def test_missing_or_stale_vix_falls_back_to_the_labelled_spy_realised_vol_proxy(vix_case: str) -> None:
    spy = bars("SPY", alternating(move=0.02))
    vix: BarSeries | None = {
        "missing": None,
        "stale": bars("VIX", np.full(79, 12.0), list(DAYS[-80:-1])),  # last bar one session before SPY's
        "nan": bars("VIX", np.r_[np.full(79, 12.0), np.nan]),
    }[vix_case]
    c = compute_conditions(spy, vix, {})
    assert c is not None
    assert c.vix_is_proxy is True
    assert c.vix == pytest.approx(_expected_proxy(0.02), rel=1e-6)  # about 32.6: nothing like the stale 12.0
    assert f"VIX proxy (SPY realised vol) {c.vix:.1f} (stressed)" in c.text


def test_trend_up_down_and_sideways() -> None:
    up = compute_conditions(bars("SPY", rising()), None, {})
    down = compute_conditions(bars("SPY", rising(step=-0.5)), None, {})
    # 30 bars at 110, 19 at 100, then 115: the price is above its 50-day average (106.3) but the 20-day
    # average (100.75) is below it, so neither trend holds
    mixed = [110.0] * 30 + [100.0] * 19 + [115.0]
    assert np.mean(mixed[-20:]) < np.mean(mixed) < mixed[-1]
    sideways = compute_conditions(bars("SPY", mixed), None, {})
    mirrored = [90.0] * 30 + [100.0] * 19 + [85.0]  # below the 50-day average, 20-day average above it
    assert np.mean(mirrored[-20:]) > np.mean(mirrored) > mirrored[-1]
    sideways_below = compute_conditions(bars("SPY", mirrored), None, {})
    assert up is not None and down is not None and sideways is not None and sideways_below is not None
    assert (up.spy_trend, up.spy_above_sma_50) == ("up", True)
    assert (down.spy_trend, down.spy_above_sma_50) == ("down", False)
    assert (sideways.spy_trend, sideways.spy_above_sma_50) == ("sideways", True)
    assert (sideways_below.spy_trend, sideways_below.spy_above_sma_50) == ("sideways", False)
    assert "SPY uptrend" in up.text and "above its 50-day average" in up.text
    assert "SPY downtrend" in down.text and "below its 50-day average" in down.text
    assert up.spy_return_20d == pytest.approx(float(rising()[-1] / rising()[-21] - 1), abs=1e-6)


def test_fewer_than_50_spy_bars_give_no_conditions() -> None:
    assert compute_conditions(bars("SPY", rising(49)), None, {}) is None
    assert compute_conditions(bars("SPY", rising(50)), None, {}) is not None


def _sector(symbol: str, ret_20d: float, days: list[date] | None = None) -> BarSeries:
    closes = np.r_[np.full(40, 50.0), np.linspace(50.0, 50.0 * (1 + ret_20d), 21)[1:]]
    return bars(symbol, closes, days)


def test_sectors_are_ranked_in_the_text_and_stale_sectors_left_out() -> None:
    sectors = {"XLK": _sector("XLK", 0.10), "XLE": _sector("XLE", -0.05), "XLF": _sector("XLF", 0.02),
               "XLU": _sector("XLU", -0.01), "XLV": _sector("XLV", 0.30, list(DAYS[-61:-1]))}
    c = compute_conditions(bars("SPY", rising()), None, sectors)
    assert c is not None
    assert c.sector_returns_20d == pytest.approx({"XLE": -0.05, "XLF": 0.02, "XLK": 0.10, "XLU": -0.01})
    assert "strongest sectors XLK +10.0%, XLF +2.0%; weakest XLU -1.0%, XLE -5.0%" in c.text


# --- application: MarketConditionService ------------------------------------------------------------------------


def _market(spy: np.ndarray, *, vix: np.ndarray | None = None, days: list[date] | None = None) -> DailyBarMarketData:
    d = days or DAYS[: len(spy)]
    series = {"SPY": bars("SPY", spy, d), "XLK": _sector("XLK", 0.05, d[-60:])}
    if vix is not None:
        series["VIX"] = bars("VIX", vix, d[: len(vix)])
    return DailyBarMarketData(series, CAL)


async def test_service_reads_vix_when_current_and_the_proxy_when_it_is_stale() -> None:
    spy = rising(len(DAYS))
    fresh = MarketConditionService(_market(spy, vix=np.full(len(DAYS), 18.0)), scope=SCOPE)
    stale = MarketConditionService(_market(spy, vix=np.full(len(DAYS) - 3, 18.0)), scope=SCOPE)
    missing = MarketConditionService(_market(spy), scope=SCOPE)
    at = CAL.session_close(DAYS[-1])
    current, old, absent = await fresh.current(at), await stale.current(at), await missing.current(at)
    assert current is not None and old is not None and absent is not None
    assert (current.vix, current.vix_is_proxy) == (18.0, False)
    assert old.vix_is_proxy and absent.vix_is_proxy
    assert "VIX proxy (SPY realised vol)" in old.text and "VIX proxy (SPY realised vol)" in absent.text
    assert old.vix != 18.0


async def test_service_at_an_open_sees_only_the_previous_close() -> None:
    spy = rising(len(DAYS))
    service = MarketConditionService(_market(spy), scope=SCOPE)
    day = DAYS[100]
    c = await service.current(CAL.session_open(day))
    assert c is not None
    assert c.text.startswith(f"Market on {DAYS[99].isoformat()}:")


def _db() -> InMemoryDatabase:
    return InMemoryDatabase(HashingEmbedder(384))


async def _record(db: InMemoryDatabase, service: MarketConditionService, at: datetime) -> object:
    async with InMemoryUnitOfWork(db) as uow:
        stored = await service.record(uow, as_of=at)
        await uow.commit()
    return stored


async def _items(db: InMemoryDatabase, at: datetime):  # type: ignore[no-untyped-def]
    async with InMemoryUnitOfWork(db) as uow:
        return await uow.condition_memory.similar("Market on", k=50, as_of=at, filters=MemoryFilters(scope=SCOPE))


async def test_record_stores_one_condition_per_session() -> None:
    db, service = _db(), MarketConditionService(_market(rising(len(DAYS))), scope=SCOPE)
    close = CAL.session_close(DAYS[100])
    first = await _record(db, service, close)
    assert first is not None
    assert await _record(db, service, close) is None
    assert await _record(db, service, close + timedelta(hours=3)) is None  # same session, later
    assert await _record(db, service, CAL.session_open(DAYS[101])) is None  # the next open still sees that close
    assert await db.condition_memory.count(scope=SCOPE) == 1
    assert await _record(db, service, CAL.session_close(DAYS[101])) is not None
    assert await db.condition_memory.count(scope=SCOPE) == 2


@pytest.mark.parametrize(("move", "label"), [(0.03, "RALLY"), (-0.03, "SELLOFF"), (0.004, "FLAT")])
async def test_forward_outcome_is_filled_only_once_five_later_sessions_are_known(move: float, label: str) -> None:
    base = 100
    spy = rising(len(DAYS), step=0.1)
    spy[base + 1:base + 6] = spy[base] * (1 + move * np.arange(1, 6) / 5)  # `move` spread over 5 sessions
    spy[base + 6:] = spy[base + 5]
    db, service = _db(), MarketConditionService(_market(spy), scope=SCOPE)
    closes = [CAL.session_close(DAYS[base + i]) for i in range(7)]
    for at in closes[:5]:  # the base session and 4 later ones
        await _record(db, service, at)
    far = closes[-1] + timedelta(days=60)
    first = [i for i in await _items(db, far) if i.record.metadata["day"] == DAYS[base].isoformat()]
    assert len(first) == 1 and first[0].record.outcome is None, "4 later sessions are not enough"

    await _record(db, service, closes[5])  # the 5th later session closes: the outcome becomes known
    by_day = {i.record.metadata["day"]: i.record for i in await _items(db, far)}
    rec = by_day[DAYS[base].isoformat()]
    assert rec.outcome == label
    assert rec.return_pct == pytest.approx(move, abs=1e-6)
    assert rec.outcome_at == closes[5]
    assert all(by_day[DAYS[base + i].isoformat()].outcome is None for i in range(1, 6))

    just_before = closes[5] - timedelta(minutes=1)
    before = {i.record.metadata["day"]: i.record for i in await _items(db, just_before)}
    hidden = before[DAYS[base].isoformat()]
    assert (hidden.outcome, hidden.return_pct, hidden.outcome_at) == (None, None, None)
    recalled = await _recall(db, service, closes[5])
    assert any(e.outcome == label and e.return_pct == pytest.approx(move, abs=1e-6) for e in recalled)
    earlier = await _recall(db, service, just_before)
    assert earlier and all(e.outcome is None for e in earlier)


async def _recall(db: InMemoryDatabase, service: MarketConditionService, at: datetime):  # type: ignore[no-untyped-def]
    current = await service.current(at)
    assert current is not None
    async with InMemoryUnitOfWork(db) as uow:
        return await service.recall(uow, current, as_of=at, k=10)


async def test_recall_never_returns_conditions_stored_after_as_of() -> None:
    db, service = _db(), MarketConditionService(_market(rising(len(DAYS))), scope=SCOPE)
    for i in range(100, 110):
        await _record(db, service, CAL.session_close(DAYS[i]))
    at = CAL.session_open(DAYS[104])  # conditions of DAYS[100..103] are known, later ones are not
    current = await service.current(at)
    assert current is not None
    async with InMemoryUnitOfWork(db) as uow:
        recalled = await service.recall(uow, current, as_of=at, k=10)
    seen = sorted(e.text.split(":")[0].removeprefix("Market on ") for e in recalled)
    assert seen == [d.isoformat() for d in DAYS[100:104]]


async def test_recall_stays_in_its_scope() -> None:
    db = _db()
    market = _market(rising(len(DAYS)))
    mine, other = MarketConditionService(market, scope=SCOPE), MarketConditionService(market, scope="live")
    await _record(db, other, CAL.session_close(DAYS[100]))
    at = CAL.session_close(DAYS[101])
    current = await mine.current(at)
    assert current is not None
    async with InMemoryUnitOfWork(db) as uow:
        assert await mine.recall(uow, current, as_of=at) == ()
