"""GBP beside USD: the display's rate (configured, fetched once a day, or missing with a reason) and where it
shows: the chat's portfolio and performance answers, the API's JSON, the daily summary and the backtest report.
Nothing that reaches an order changes: every USD figure stays as it was."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from adapters.reports.backtest_report import summary_dict, write_report
from application import jobs
from application.backtest import BacktestResult
from application.currency import RETRY_AFTER, CurrencyDisplay
from application.performance_report import performance_report
from domain.analytics import performance
from domain.chat import ToolCall
from domain.currency import DisplayCurrency, FxRate, FxUnavailableError, money_text
from domain.ports.repositories import EquityPoint
from entrypoints.api.shapes import performance_report_json, portfolio_json
from tests.support.chat_fakes import SCOPE, make_chat_world

NY = ZoneInfo("America/New_York")
CAL = NyseCalendar()
T0 = datetime(2024, 7, 3, 15, 0, tzinfo=UTC)
D = Decimal
GBP = CurrencyDisplay("GBP", configured_rate=D("0.8"))


class FlakyRates:
    """Fails `failures` times, then answers 0.78."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    async def usd_to(self, quote: str) -> FxRate:
        self.calls += 1
        if self.calls <= self.failures:
            raise FxUnavailableError("the exchange rate service at http://fx could not be reached (ConnectError)")
        return FxRate(quote, D("0.78"), date(2024, 7, 3), "fake")


def test_money_text() -> None:
    assert money_text(D("1234.5"), "GBP") == "£1,234.50" and money_text(D("-12.3"), "USD") == "-$12.30"
    assert money_text(D(5), "CHF") == "5.00 CHF"
    assert DisplayCurrency().text(D(650)) == "$650.00" and DisplayCurrency().note() == ""


async def test_usd_only_by_default_and_a_failed_fetch_is_retried_after_a_while() -> None:
    assert not (await CurrencyDisplay().at(T0)).shown
    rates = FlakyRates(failures=1)
    display = CurrencyDisplay("GBP", rates=rates)

    failed = await display.at(T0)
    still = await display.at(T0 + RETRY_AFTER - timedelta(seconds=1))
    later = await display.at(T0 + RETRY_AFTER)

    assert not failed.shown and "could not be reached" in (failed.problem or "") and still == failed
    assert later.text(D(100)) == "$100.00 (£78.00)" and rates.calls == 2


async def test_the_chat_portfolio_shows_gbp_beside_usd_and_the_rate() -> None:
    world = make_chat_world()
    world.tools.currency = GBP

    result = await world.tools.run(ToolCall("c1", "portfolio", {}), who="alice", as_of=T0)

    assert "(£8,000.00)" in result.text and "GBP at 0.8 per USD (configured" in result.text
    assert D(result.data["equity"]) == D(10000)
    assert result.data["display_currency"]["equity"] == "8000.00"
    world.tools.currency = CurrencyDisplay()
    plain = await world.tools.run(ToolCall("c1", "portfolio", {}), who="alice", as_of=T0)
    assert "£" not in plain.text and "display_currency" not in plain.data


async def add_curve(world: Any) -> datetime:
    days = CAL.sessions(date(2024, 7, 8), date(2024, 7, 12))[:3]
    curve = [(D(1000), D(0)), (D(1010), D(0)), (D(2030), D(1000))]
    async with world.uow() as uow:
        for day, (equity, deposits) in zip(days, curve, strict=True):
            await uow.equity.add(SCOPE, EquityPoint(CAL.session_close(day), equity, equity, D(0), deposits))
        await uow.commit()
    return CAL.session_close(days[-1]) + timedelta(hours=1)


async def test_the_chat_performance_shows_profit_in_gbp_and_keeps_deposits_out() -> None:
    world = make_chat_world()
    world.tools.currency = GBP
    at = await add_curve(world)

    result = await world.tools.run(ToolCall("c1", "performance", {"window": "all"}), who="alice", as_of=at)

    assert "profit $30.00 (£24.00)" in result.text, result.text
    assert "net deposits $1,000.00 (£800.00) are not counted as return" in result.text
    assert result.data["display_currency"]["profit"] == "24.00"


async def test_the_api_json_has_an_extra_display_field_and_usd_unchanged() -> None:
    world = make_chat_world()
    at = await add_curve(world)
    shown = await GBP.at(at)
    pf = await world.read_models.portfolio(at)
    report = await performance_report(world.read_models.uow_factory, SCOPE, CAL, window="all", as_of=at)

    body, plain = portfolio_json(pf, shown), portfolio_json(pf)
    perf = performance_report_json(report, shown)

    assert {k: v for k, v in body.items() if k != "display_currency"} == plain
    assert body["display_currency"]["equity"] == str(shown.rate.convert(pf.account.equity))  # type: ignore[union-attr]
    assert perf["display_currency"]["end_equity"] == "1624.00" and D(perf["end_equity"]) == 2030
    missing = DisplayCurrency("GBP", problem="no GBP rate configured")
    assert portfolio_json(pf, missing)["display_currency"] == {"currency": "GBP", "problem": "no GBP rate configured"}


async def test_the_daily_summary_shows_gbp_beside_usd() -> None:
    db = InMemoryDatabase(HashingEmbedder())

    def factory() -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(db)

    tue = date(2024, 3, 5)
    async with factory() as uow:
        await uow.equity.add("live", EquityPoint(datetime(2024, 3, 4, 16, tzinfo=NY), D(650), D(650), D(0)))
        await uow.equity.add("live", EquityPoint(datetime(2024, 3, 5, 15, tzinfo=NY), D("655.50"), D(400), D(255)))
        await uow.commit()

    event = await jobs.daily_summary_job(factory, "live", CAL, CAL.session_close(tue) + timedelta(minutes=15),
                                         currency=GBP)

    assert event is not None
    assert "equity 655.50 USD, P&L +5.50 USD (+0.85%) (524.40 GBP, P&L +4.40 GBP)" in event.message
    assert event.payload["display_currency"]["pnl"] == "4.40" and event.payload["pnl"] == "5.50"


def test_the_backtest_report_shows_gbp_and_keeps_usd(tmp_path: Path) -> None:
    result = BacktestResult("r1", "backtest:r1", date(2024, 6, 12), date(2024, 6, 12), D(650), ["AAA"], [], [], [],
                            performance([(date(2024, 6, 11), D(650)), (date(2024, 6, 12), D(651))]), {})
    shown = DisplayCurrency("GBP", FxRate("GBP", D("0.8"), date(2024, 7, 3), "configured"))

    summary = write_report(result, tmp_path, {}, shown)

    assert summary["display_currency"]["starting_cash"] == "520.00"
    assert {k: v for k, v in summary.items() if k != "display_currency"} == summary_dict(result, {})
    assert "starting cash 520.00 GBP" in (tmp_path / "report.html").read_text()


def test_the_setting_picks_a_configured_or_a_fetched_rate() -> None:
    from entrypoints.settings import load_settings
    from entrypoints.wiring.currency import currency_display

    assert currency_display(load_settings(env="test")).currency == "USD"
    fixed = currency_display(load_settings(env="test", reporting={"currency": "gbp", "fx_rate": "0.79"}))
    fetched = currency_display(load_settings(env="test", reporting={"currency": "GBP",
                                                                    "fx_url": "http://127.0.0.1:9"}))
    assert fixed.currency == "GBP" and fixed._configured == D("0.79") and fixed._rates is None
    assert type(fetched._rates).__name__ == "FrankfurterRates"


async def test_orders_are_the_same_whatever_currency_is_shown() -> None:
    from entrypoints.settings import load_settings
    from tests.support.world import make_world, run_day

    orders = []
    for reporting in ({}, {"currency": "GBP", "fx_rate": "0.5"}):
        world = await make_world(settings=load_settings(env="test", reporting=reporting))
        for day in CAL.sessions(date(2024, 3, 1), date(2024, 4, 30)):
            await run_day(world, day)
        orders.append([(o.client_order_id, o.request.qty, o.request.side) for o in world.app.broker.all_orders()])
    assert orders[0] == orders[1] and orders[0]
