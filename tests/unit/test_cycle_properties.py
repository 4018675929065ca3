"""Property: whatever the agents answer — absurd sizes, negative or NaN numbers, unknown symbols,
malformed fields — no order ever breaks a hard limit, and unusable answers become HOLDs, not crashes."""

from __future__ import annotations

import asyncio
import math
from datetime import date
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.agents.schemas import RiskContext, SignalContext, ValidatorContext
from domain.models.trading import Side
from domain.ports.llm import Decision, LLMRequest, LLMUsage
from domain.verdict import Verdict
from entrypoints.settings import load_settings
from tests.support.world import CALENDAR, feed_close, feed_open, make_world

WILD = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-2, 2), st.integers(-10**9, 10**9),
                 st.text(max_size=5), st.none())


class FuzzLLM:
    """Draws every agent answer from hypothesis; half-sensible values keep plenty of answers valid."""

    provider = "fuzz"

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def _sane(self) -> bool:
        return self.data.draw(st.integers(0, 59)) != 37  # about one value in 60 is garbage

    def _num(self, lo: float, hi: float) -> Any:
        return self.data.draw(st.floats(lo, hi) if self._sane() else WILD)

    def _symbol(self, real: list[str]) -> Any:
        return self.data.draw(st.sampled_from(real) if self._sane() else st.one_of(st.text(max_size=8),
                                                                                      st.just("ZZZZ")))

    async def complete(self, request: LLMRequest[Any]) -> Decision[Any]:
        ctx = request.context
        raw: dict[str, Any]
        if isinstance(ctx, SignalContext):
            real = [s.symbol for s in ctx.symbols]
            raw = {"proposals": [{"symbol": self._symbol(real),
                                  "action": self.data.draw(st.sampled_from(["BUY", "SELL", "HOLD"]) if self._sane()
                                                         else st.sampled_from(["buy", "SHORT", ""])),
                                  "confidence": self._num(0.3, 1), "reasoning": "fuzz"} for _ in real]}
        elif isinstance(ctx, RiskContext):
            real = [c.symbol for c in ctx.candidates]
            raw = {"assessments": [{"symbol": self._symbol(real), "position_pct": self._num(0, 0.6),
                                    "stop_loss_pct": self._num(0.001, 0.99), "take_profit_pct": self._num(0.01, 5),
                                    "reasoning": "fuzz"} for _ in real]}
        elif isinstance(ctx, ValidatorContext):
            real = [c.symbol for c in ctx.candidates]
            approve = st.sampled_from([True] * 4 + [False])
            raw = {"verdicts": [{"symbol": self._symbol(real), "approve": self.data.draw(approve),
                                 "confidence_adjustment": self._num(-1, 0), "warnings": [],
                                 "reasoning": "fuzz"} for _ in real]}
        else:
            raise AssertionError(f"unexpected context {type(ctx)}")
        return Decision(request.output_schema.model_validate(raw), LLMUsage("fuzz", "fuzz"))


async def _run(data: st.DataObject) -> None:
    s = load_settings(env="test")
    risk = s.risk
    world = await make_world(llms={"default": FuzzLLM(data)}, n=8)
    broker = world.app.broker
    for day in CALENDAR.sessions(date(2024, 3, 1), date(2024, 3, 20)):
        feed_open(world, day)
        equity, before = broker.equity(), {o.client_order_id for o in broker.all_orders()}
        result = await world.app.cycle.run(as_of=CALENDAR.session_open(day))
        assert result.status == "completed", result.error
        opens = world.app.market.opens_on(day)
        new = [o for o in broker.all_orders() if o.client_order_id not in before and not o.is_leg]
        entries = [o for o in new if o.request.side is Side.BUY]
        assert len(entries) <= risk.max_new_orders_per_cycle
        async with world.uow_factory() as uow:
            pending = (await uow.trading.load(world.app.cycle.scope)).pending_entries
        for o in entries:
            px = opens[o.symbol]
            legs = [leg for leg in broker.all_orders() if leg.parent_id == o.broker_order_id]
            stop = pending[o.client_order_id].stop_price  # kept by Quorum for fractional entries
            assert stop is not None, "every entry carries a stop"
            if not o.request.fractional:
                assert [leg.request.stop_price for leg in legs if leg.request.stop_price] == [stop], "a stop leg"
            distance = float(1 - stop / px)
            assert risk.min_stop_pct - 0.01 <= distance <= risk.max_stop_pct + 0.01
            assert o.request.qty * px <= Decimal(str(risk.max_position_pct)) * equity + Decimal("0.02")
        assert broker.cash >= 0, "no margin: cash never goes negative"
        assert all(p.qty > 0 for p in await broker.positions()), "long only"
        gross = sum((p.qty * opens.get(p.symbol, p.avg_entry_price) for p in await broker.positions()), Decimal(0))
        assert gross <= Decimal(str(risk.max_gross_exposure_pct)) * broker.equity() + Decimal("1")
        for o in result.outcomes:
            assert isinstance(o.final, Verdict), o  # every outcome a cycle returns is decided
            assert math.isfinite(o.signal.confidence)
        feed_close(world, day)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_no_agent_answer_breaks_a_hard_limit(data: st.DataObject) -> None:
    asyncio.run(_run(data))
