"""The cycle's alert-worthy events that the pinned worlds of test_cycle_golden.py never write read word for word
as they did before the factories (the messages, severities and payload keys below are those of commit 4d6d658):
alerts and the API show them as they are."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain import event_factories as ev
from domain.breaker import ResumeCheck
from domain.errors import ForbiddenError, InsufficientBuyingPowerError
from domain.events import Event, EventType, Severity
from domain.models.trading import Fill, OrderRequest, OrderType, Side, TimeInForce

AT = datetime(2024, 3, 4, 14, 35, tzinfo=UTC)
S, C = "live", "c-1"
STOP = OrderRequest("q-stop", "AAA", Side.SELL, Decimal(3), OrderType.STOP, stop_price=Decimal("9.50"),
                    time_in_force=TimeInForce.GTC, reason="protective stop")
BUY = OrderRequest("q-buy", "AAA", Side.BUY, Decimal(3), OrderType.MARKET, stop_price=Decimal("9.50"),
                   time_in_force=TimeInForce.GTC)
FILL = Fill("q-x", "AAA", Side.BUY, Decimal(2), Decimal("10.25"), Decimal("0.01"), AT, "entry")

CASES = [
    (ev.cycle_skipped(at=AT, scope=S, cycle_id=C, kind="event", reason="another cycle holds the trading lock",
                      symbol="AAA"),
     Event(EventType.CYCLE_SKIPPED, AT, "event cycle skipped: another cycle holds the trading lock", Severity.WARNING,
           C, "AAA", {"reason": "another cycle holds the trading lock"}, S)),
    (ev.breaker_eligible(at=AT, scope=S, cycle_id=C, check=ResumeCheck(True, 0.01, 3, 1.5, ())),
     Event(EventType.BREAKER_ELIGIBLE, AT, "circuit breaker is eligible to resume; waiting for manual approval "
           "(quorum breaker resume --approve)", Severity.WARNING, C, None,
           {"drawdown": 0.01, "win_streak": 3, "sharpe_7d": 1.5}, S)),
    (ev.position_adopted(at=AT, scope=S, cycle_id=None, symbol="AAA", qty=Decimal(3)),
     Event(EventType.RECONCILIATION_DIFF, AT, "AAA: position of 3 held at the broker without an open trade in Quorum "
           "— adopted and protected", Severity.WARNING, None, "AAA", {"kind": "position_adopted"}, S)),
    (ev.fill_adopted(fill=FILL, scope=S, cycle_id=C),
     Event(EventType.RECONCILIATION_DIFF, AT, "buy fill of 2 AAA without a pending entry (sent by a cycle that did not "
           "commit, or not by Quorum): position adopted, protected by the broker's stop order or the default stop",
           Severity.WARNING, C, "AAA", {"kind": "adopted_fill", "client_order_id": "q-x"}, S)),
    (ev.reconciliation_difference(at=AT, scope=S, cycle_id=C, kind="order_recovered", detail="buy 3 AAA (new) was "
                                  "at the broker", symbol="AAA", client_order_id="q-1"),
     Event(EventType.RECONCILIATION_DIFF, AT, "buy 3 AAA (new) was at the broker", Severity.WARNING, C, "AAA",
           {"kind": "order_recovered", "detail": "buy 3 AAA (new) was at the broker", "client_order_id": "q-1"}, S)),
    (ev.protective_stop_placed(at=AT, scope=S, cycle_id=None, request=STOP, broker_order_id="b-1"),
     Event(EventType.ORDER_SUBMITTED, AT, "protective GTC stop for 3 AAA at 9.50 (no live stop order covered the "
           "position)", Severity.WARNING, None, "AAA",
           {"kind": "protective_stop", "client_order_id": "q-stop", "broker_order_id": "b-1", "stop_price": "9.50",
            "qty": "3"}, S)),
    (ev.protective_stop_refused(at=AT, scope=S, cycle_id=C, symbol="AAA", stop_price=Decimal("9.50"),
                                error=ForbiddenError("account is restricted")),
     Event(EventType.ORDER_REJECTED, AT, "AAA: the broker refused a protective stop at 9.50 (account is restricted); "
           "Quorum keeps the stop itself and checks it every cycle", Severity.WARNING, C, "AAA",
           {"kind": "protective_stop", "error": "ForbiddenError"}, S)),
    (ev.order_rejected(at=AT, scope=S, cycle_id=C, request=BUY, error=InsufficientBuyingPowerError("no money")),
     Event(EventType.ORDER_REJECTED, AT, "broker rejected buy 3 AAA: no money", Severity.WARNING, C, "AAA",
           {"client_order_id": "q-buy", "error": "InsufficientBuyingPowerError"}, S)),
    (ev.order_submitted(at=AT, scope=S, cycle_id=C, request=BUY, broker_order_id="b-2"),
     Event(EventType.ORDER_SUBMITTED, AT, "buy 3 AAA (whole shares, gtc; stop 9.50)", Severity.INFO, C, "AAA",
           {"client_order_id": "q-buy", "broker_order_id": "b-2", "qty": "3", "side": "buy", "stop_price": "9.50"}, S)),
    (ev.exit_not_sent(at=AT, scope=S, cycle_id=C, symbol="AAA"),
     Event(EventType.PROPOSAL_REJECTED, AT, "AAA: exit not sent, the position was already closed", Severity.INFO, C,
           "AAA", {"kind": "already_closed"}, S)),
    (ev.llm_budget_exhausted(at=AT, scope=S, cycle_id=C, cap_usd=1.0, spent_usd=1.2345),
     Event(EventType.LLM_BUDGET_EXHAUSTED, AT, "daily LLM cap $1.00 reached (spent $1.2345); agents HOLD",
           Severity.WARNING, C, None, {"cap_usd": 1.0, "spent_usd": 1.2345}, S)),
    (ev.llm_failed(at=AT, scope=S, cycle_id=C, agent="risk", error="LLMError: 529 overloaded"),
     Event(EventType.LLM_FAILED, AT, "risk agent failed, holding: LLMError: 529 overloaded", Severity.WARNING, C, None,
           {"agent": "risk", "error": "LLMError: 529 overloaded"}, S)),
]


@pytest.mark.parametrize(("made", "before"), CASES, ids=[f"{c[1].type}-{i}" for i, c in enumerate(CASES)])
def test_the_factory_writes_the_event_as_it_was_written_before(made: Event, before: Event) -> None:
    assert made == before
    assert list(made.payload) == list(before.payload)  # alerts list the payload's fields in this order
