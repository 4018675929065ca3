"""The paper campaign's wiring: the settings it records, the chat assistant its probe asks, its daily report job."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from application.chat.agent import ChatAssistant
from application.chat.control_actions import ControlActions
from application.chat.event_index import EventSearch
from application.chat.tools import ChatTools
from application.currency import CurrencyDisplay
from application.paper.chat_probe import probe_chat
from application.paper.report import paper_report_job
from application.queries import ReadModels
from domain.chat_views import CHAT_VIEWS
from domain.ports.broker import Broker
from domain.ports.chat import SqlReader
from domain.ports.clock import MarketCalendar
from domain.ports.market_data import MarketData
from domain.ports.uow import UnitOfWorkFactory
from entrypoints.settings import Settings
from entrypoints.wiring.system import daily_cap_usd


def settings_snapshot(settings: Settings) -> dict[str, Any]:
    """What a campaign records of the settings: broker, models, LLM cap, schedule, risk limits (no secret)."""
    return {"broker": settings.broker.provider, "paper": settings.broker.paper,
            "models": {a: getattr(settings.llm, f"{a}_model") for a in ("signal", "risk", "validator", "picker")},
            "daily_cap_usd": daily_cap_usd(settings), "chat_model": settings.chat.model,
            "cycle_minutes": settings.schedule.cycle_minutes, "risk": settings.risk.model_dump(mode="json")}


def account_label(settings: Settings) -> str:
    """The account a campaign runs on, as far as the settings say ("alpaca paper", "sim paper")."""
    return f"{settings.broker.provider} {'paper' if settings.broker.paper else 'live'}"


def _sql_reader(settings: Settings, storage: str) -> SqlReader:
    if storage == "memory":
        from adapters.inmemory.sql_reader import InMemorySqlReader
        from adapters.postgres.readonly_sql import chat_guard
        from entrypoints.wiring.chat_sql import chat_sql_limits

        limits = chat_sql_limits(settings)
        return InMemorySqlReader(chat_guard(limits, sorted(v.name for v in CHAT_VIEWS)), limits=limits)
    from entrypoints.wiring.chat_sql import build_sql_reader

    return build_sql_reader(settings)


def probe_assistant(settings: Settings, uow_factory: UnitOfWorkFactory, scope: str, broker: Broker,
                    calendar: MarketCalendar, market: MarketData | None, events: EventSearch, ledger: Any,
                    storage: str) -> ChatAssistant:
    """The chat's assistant as the chat UI builds it (model or router, tools, daily cap), for the daily probe;
    control actions are proposed but never confirmed (no queue)."""
    read_models = ReadModels(uow_factory, scope, broker, calendar, market)
    controls = ControlActions(uow_factory, scope, broker=broker, calendar=calendar, cycles=None, evals=None,
                              confirm_timeout=timedelta(seconds=settings.chat.confirm_timeout_s))
    tools = ChatTools(read_models, _sql_reader(settings, storage), events, controls)
    llm = None
    if settings.chat.model != "offline":
        from entrypoints.chat.wiring import chat_model

        llm = chat_model(settings)
    return ChatAssistant(tools, uow_factory=uow_factory, scope=scope, daily_cap_usd=daily_cap_usd(settings),
                         tz=calendar.tz, llm=llm, max_rounds=settings.chat.max_tool_rounds, ledger=ledger,
                         call_estimate_usd=settings.llm.call_estimate_usd)


def paper_report(settings: Settings, uow_factory: UnitOfWorkFactory, calendar: MarketCalendar, scope: str,
                 market: MarketData, broker: Broker, events: EventSearch, ledger: Any,
                 storage: str, currency: CurrencyDisplay | None = None) -> Callable[[datetime], Awaitable[object]]:
    """The daily report job: probes the chat (its assistant built on first use), then writes the report."""
    built: list[ChatAssistant] = []

    async def probe(at: datetime) -> object:
        if not built:
            built.append(probe_assistant(settings, uow_factory, scope, broker, calendar, market, events, ledger,
                                         storage))
        return await probe_chat(built[0], uow_factory, scope, as_of=at)

    async def report(at: datetime) -> object:
        event = await paper_report_job(uow_factory, calendar, scope, at, market=market, probe=probe,
                                       currency=currency)
        return None if event is None else event.message

    return report
