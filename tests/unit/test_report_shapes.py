"""summary.json shapes the typed parts of a backtest or rehearsal result itself: the breaker's history (ISO days,
an open shadow period flagged), picker performance by "Nd" horizon and the paper-trade report."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from adapters.reports.backtest_report import summary_dict, write_report
from adapters.reports.shapes import breaker_history_json, paper_trades_json
from application.backtest import BacktestResult
from application.breaker_history import BreakerHistory, BreakerResume, BreakerTrip, ShadowPeriod
from domain.analytics import performance
from domain.discovery.evaluation import ABReport, HorizonPerformance, TradeReturn

AT = datetime(2024, 6, 12, 15, 0, tzinfo=UTC)
CLOSE = datetime(2024, 6, 12, 20, 0, tzinfo=UTC)
HISTORY = BreakerHistory(
    "never", (BreakerTrip(AT, "drawdown", "too deep"),), (CLOSE,), (BreakerResume(CLOSE, "sim", ""),),
    (ShadowPeriod(date(2024, 6, 12), date(2024, 6, 14), 3),
     ShadowPeriod(date(2024, 6, 17), date(2024, 6, 18), 2, open=True)), 5, 0.5)


def test_breaker_history_has_iso_times_and_days_and_flags_only_the_period_still_open() -> None:
    assert breaker_history_json(HISTORY) == {
        "resume_policy": "never", "trips": [{"at": AT.isoformat(), "trigger": "drawdown", "reason": "too deep"}],
        "eligible": [CLOSE.isoformat()], "resumes": [{"at": CLOSE.isoformat(), "by": "sim", "note": ""}],
        "shadow_periods": [{"from": "2024-06-12", "to": "2024-06-14", "sessions": 3},
                           {"from": "2024-06-17", "to": "2024-06-18", "sessions": 2, "open": True}],
        "shadow_sessions": 5, "halted_share": 0.5}


def test_a_paper_trade_report_without_enough_trades_has_no_test() -> None:
    one = TradeReturn("AAA", AT, CLOSE, 10.0, 11.0)
    shaped = paper_trades_json(ABReport("ensemble", 5, [one], [one, one]))
    assert shaped == {"picker": "ensemble", "horizon_days": 5, "actual_trades": 1, "hypothetical_trades": 2,
                      "mean_actual": shaped["mean_actual"], "mean_hypothetical": shaped["mean_hypothetical"],
                      "difference": 0.0, "t": None, "df": None, "p_value": None}
    assert abs(shaped["mean_actual"] - 0.1) < 1e-12


def result() -> BacktestResult:
    r = BacktestResult("r1", "backtest:r1", date(2024, 6, 12), date(2024, 6, 18), Decimal(650), ["AAA"], [], [], [],
                       performance([(date(2024, 6, 11), Decimal(650)), (date(2024, 6, 12), Decimal(651))]),
                       {"spy_buy_and_hold": {"total_return": None, "sharpe": None, "max_drawdown": None}})
    r.extra.update({"breaker": HISTORY, "invariants": {"checked": 4, "violations": []}, "kind": "rehearsal",
                    "picker_performance": {"ensemble": {1: HorizonPerformance(1, 3, 2 / 3, 0.01, 0.0, 0.01)}},
                    "discovery_paper_trades": ABReport("ensemble", 5, [], [])})
    return r


def test_summary_json_shapes_the_typed_extras_and_passes_the_others_through(tmp_path: Path) -> None:
    summary = summary_dict(result(), {"seed": 1})
    assert summary["breaker"] == breaker_history_json(HISTORY)
    assert summary["picker_performance"] == {"ensemble": {"1d": {"n": 3, "hit_rate": 2 / 3, "avg_return": 0.01,
                                                                 "avg_universe_return": 0.0, "avg_excess": 0.01}}}
    assert summary["discovery_paper_trades"]["actual_trades"] == 0
    assert summary["invariants"] == {"checked": 4, "violations": []} and summary["kind"] == "rehearsal"
    written = write_report(result(), tmp_path, {"seed": 1})
    assert json.loads((tmp_path / "summary.json").read_text()) == json.loads(json.dumps(written)) == summary
    assert "Resume policy of this simulation: <b>never</b>" in (tmp_path / "report.html").read_text()
