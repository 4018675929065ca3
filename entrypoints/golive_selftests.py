"""Go-live self-tests that run real parts of Quorum on simulations: a cycle whose commit fails (rollback), the
LLM adapter's retries and the spend cap, and the whole pipeline against the Alpaca-wire emulator with broker
faults injected. None touches the configured database, broker or models: they prove the machinery, on the
configured settings, before real money depends on it.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any

from dependency_injector import providers
from pydantic import BaseModel

from adapters.inmemory.alpaca_emulator import AlpacaEmulator, Fault
from adapters.llm.litellm_adapter import LiteLLM
from adapters.llm.offline_policy import OfflinePolicyLLM
from application.cycle.breaker_book import BREAKER_DOC
from application.liquidity import most_liquid_before
from application.llm_gateway import LLMGateway
from application.preflight import CheckResult, failed, passed
from domain import breaker as brk
from domain.errors import DatabaseError
from domain.events import EventType
from domain.ports.llm import Decision, LLMRequest, LLMUsage, Message
from domain.ports.repositories import EventQuery
from entrypoints.container import build_container, close_container
from entrypoints.rehearsal import Rehearsal, RehearsalOptions
from entrypoints.settings import Settings
from entrypoints.wiring.system import daily_cap_usd, no_wait
from entrypoints.wiring.venue import NOT_STOCKS

SIM_START, SIM_END = date(2024, 3, 1), date(2024, 4, 30)
PIPELINE_START, PIPELINE_END = date(2024, 3, 4), date(2024, 3, 6)
SELFTEST_MODEL = "openai/quorum-golive-selftest"
ROLLBACK_HINT = "a failed cycle must leave nothing half-written: see application/cycle/trading_cycle.py and run " \
                "`pytest tests/unit/test_trading_cycle.py`"
LLM_HINT = "see application/llm_gateway.py, application/llm_spend.py and adapters/llm/litellm_adapter.py; " \
           "run `pytest tests/unit/test_llm_spend_cap.py`"
PIPELINE_HINT = "rerun `quorum rehearse --start 2024-03-04 --end 2024-03-06` and read its invariants and failed " \
                "cycles"


def _offline(settings: Settings) -> Settings:
    """The settings with every model offline and in-process jobs: a self-test never spends or needs Redis."""
    llm = settings.llm.model_copy(update={"signal_model": "offline", "risk_model": "offline",
                                          "validator_model": "offline", "picker_model": "offline",
                                          "replay_dir": None})
    return settings.model_copy(update={"llm": llm, "redis_url": None, "env": "test"})


class _CommitFails:
    """A unit-of-work factory whose next transaction fails at commit, as a lost database connection would."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.armed = inner, False

    def __call__(self) -> Any:
        uow = self.inner()
        if self.armed:
            self.armed = False

            async def lost() -> None:
                raise DatabaseError("connection to the database lost during commit (golive self-test)")

            uow.commit = lost
        return uow


async def rollback_selftest(settings: Settings) -> CheckResult:
    """A cycle whose commit fails must be rolled back whole (no order record, none of its events), recorded as a
    system error counted by the breaker, and run again cleanly."""
    scope = "golive:rollback"
    c = build_container(_offline(settings), "backtest", storage="memory", scope=scope, start=SIM_START, end=SIM_END,
                        cash=settings.risk.starting_capital, n_symbols=8, seed=3)
    try:
        c.llms.override(providers.Object({"default": OfflinePolicyLLM()}))
        calendar = c.calendar()
        factory = _CommitFails(c.uow_factory())
        c.uow_factory.override(providers.Object(factory))
        c.run.symbols.from_value(await most_liquid_before(c.market(), calendar, SIM_START, 8, exclude=NOT_STOCKS))
        cycle, broker, market, clock = c.cycle(), c.broker(), c.market(), c.venue_clock()
        day = calendar.sessions(SIM_START, SIM_END)[5]
        at = calendar.session_open(day)
        clock.set(at)
        broker.on_session_open(day, market.opens_on(day))
        factory.armed = True
        result = await cycle.run(as_of=at)
        problems: list[str] = []
        if result.status != "failed":
            problems.append(f"the cycle whose commit failed ended {result.status}")
        async with factory() as uow:
            orders = await uow.orders.list(scope)
            started = await uow.events.query(EventQuery(scope=scope, types=(EventType.CYCLE_STARTED,), limit=10))
            errors = await uow.events.query(EventQuery(scope=scope, types=(EventType.SYSTEM_ERROR,), limit=10))
            state = brk.BreakerState.from_dict(await uow.state.load(scope, BREAKER_DOC) or {"status": "active",
                                                                                          "peak_equity": "0"})
        if orders or started:
            problems.append(f"{len(orders)} order records and {len(started)} cycle events survived the rollback")
        if len(errors) != 1:
            problems.append(f"{len(errors)} system errors recorded (expected 1)")
        if not state.recent_errors or state.recent_errors[-1] is not True:
            problems.append("the breaker did not count the failed cycle as a system error")
        retried = await cycle.run(as_of=at, cycle_id=result.cycle_id)
        if retried.status != "completed":
            problems.append(f"the cycle asked for again ended {retried.status}: {retried.error}")
    finally:
        await close_container(c)
    if problems:
        return failed("; ".join(problems), ROLLBACK_HINT)
    return passed("a cycle whose commit failed left no order or event behind, was recorded as a system error for "
                  "the breaker, and ran cleanly when asked for again")


class _Ping(BaseModel):
    ok: bool


class _FlakyLiteLLM(LiteLLM):
    """The real adapter whose first attempts time out; then litellm's mock answers (no network)."""

    def __init__(self, timeouts: int, max_retries: int) -> None:
        super().__init__({"default": SELFTEST_MODEL}, max_retries=max_retries, sleep=no_wait,
                         response_format="none", completion_kwargs={"mock_response": '{"ok": true}'},
                         prices={SELFTEST_MODEL: (1.0, 1.0)})
        self.timeouts, self.calls = timeouts, 0

    async def _call(self, model: str, messages: list[dict[str, Any]], fmt: dict[str, Any] | None,
                    max_tokens: int | None = None) -> Any:
        self.calls += 1
        if self.calls <= self.timeouts:
            raise TimeoutError("provider timed out (golive self-test)")
        return await super()._call(model, messages, fmt, max_tokens)


class _PricedModel:
    """A paid model costing `cost` per call, slow enough for calls to overlap."""

    provider = "selftest"

    def __init__(self, cost: float) -> None:
        self.cost, self.answered = cost, 0

    async def complete(self, request: LLMRequest[Any]) -> Decision[Any]:
        await asyncio.sleep(0)
        self.answered += 1
        return Decision(_Ping(ok=True), LLMUsage("selftest", SELFTEST_MODEL, 10, 2, self.cost))


def _request(as_of: datetime) -> LLMRequest[_Ping]:
    return LLMRequest(agent="signal", output_schema=_Ping, context=_Ping(ok=True), as_of=as_of,
                      messages=(Message("system", "golive self-test"), Message("user", 'Reply {"ok": true}.')))


async def llm_selftest(settings: Settings, *, as_of: datetime, tz: tzinfo) -> CheckResult:
    """The LiteLLM adapter retries a timeout (QUORUM_LLM__MAX_RETRIES >= 1), and the gateway holds five concurrent
    paid calls inside the configured daily cap (each costing 40% of it: two answered, the rest refused)."""
    s = settings.llm
    if s.max_retries < 1:
        return failed("QUORUM_LLM__MAX_RETRIES=0: a single timeout fails the agent",
                      "set QUORUM_LLM__MAX_RETRIES=3 (the default)")
    flaky = _FlakyLiteLLM(timeouts=1, max_retries=s.max_retries)
    try:
        decision = await flaky.complete(_request(as_of))
    except Exception as exc:  # noqa: BLE001 - any failure is this gate's failure
        return failed(f"a call that timed out once was not retried to an answer: {type(exc).__name__}: {exc}",
                      LLM_HINT)
    if decision.usage.attempts != 2 or not decision.output.ok:
        return failed(f"expected an answer at the 2nd attempt, got attempt {decision.usage.attempts}", LLM_HINT)
    cap = daily_cap_usd(settings)
    if cap <= 0:
        return passed(f"a timeout is retried (up to {s.max_retries} times); the daily cap is 0: no paid call")
    model = _PricedModel(cap * 0.4)
    gateway = LLMGateway({"default": model}, cap, "golive:llm", tz, call_estimate_usd=cap * 0.4)
    answers = await asyncio.gather(*(gateway.ask(_request(as_of)) for _ in range(5)))
    spent = gateway.spend.spent
    answered = sum(a is not None for a in answers)
    if answered != 2 or spent > cap + 1e-9:
        return failed(f"with a {cap:.2f} USD cap and calls of {cap * 0.4:.2f} USD, {answered} of 5 concurrent calls "
                      f"were answered and {spent:.4f} USD spent (expected 2 and at most the cap)", LLM_HINT)
    return passed(f"a timeout is retried (up to {s.max_retries} times); the {cap:.2f} USD daily cap let 2 of 5 "
                  f"concurrent calls through ({spent:.2f} USD) and refused the rest")


def _faults(emu: AlpacaEmulator) -> None:
    emu.inject(Fault("drop_after_accept", method="POST", path="/v2/orders", times=2))
    emu.inject(Fault("status", method="GET", path="/v2/positions", status=503, times=3))
    emu.inject(Fault("status", method="GET", path="/v2/account", status=429, retry_after=1, times=2))


async def pipeline_selftest(settings: Settings, *, run_id: str) -> CheckResult:
    """Three sessions of the live stack (schedule, jobs, reconciliation, monitor, alerts, the Alpaca adapters)
    against the Alpaca-wire emulator on the synthetic market, with dropped order responses and 5xx/429 answers
    injected: every invariant must hold and no order may reach the broker twice."""
    emulators: list[AlpacaEmulator] = []

    def hook(emu: AlpacaEmulator) -> None:
        emulators.append(emu)
        _faults(emu)

    with tempfile.TemporaryDirectory(prefix="quorum-golive-") as tmp:
        opts = RehearsalOptions(PIPELINE_START, PIPELINE_END, Path(tmp) / "report", symbols=10,
                                cash=settings.risk.starting_capital)
        summary = await Rehearsal(_offline(settings), opts, run_id=run_id, storage="memory").run(emulator_hook=hook)
    inv = summary["invariants"]
    problems = [f"{v['rule']}: {v['evidence']}" for v in inv["violations"][:3]]
    orders = [o.client_order_id for o in emulators[0].exchange.orders() if o.parent_id is None] if emulators else []
    if len(orders) != len(set(orders)):
        problems.append("an order reached the broker twice")
    if summary["cycles"] == 0:
        problems.append("no cycle ran")
    where = (f"{summary['sessions']} sessions, {summary['cycles']} cycles ({summary['failed_cycles']} failed under "
             f"injected faults), {len(orders)} orders, {inv['checked']} invariant checks")
    if problems:
        return failed(f"{where}: " + "; ".join(problems), PIPELINE_HINT)
    return passed(f"{where}, all held; no order sent twice")

