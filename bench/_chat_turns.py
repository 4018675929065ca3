"""The chat's daily turns in the LLM-cost benchmark: after each session's close, `DAILY_SCRIPT` through the real chat.

`ChatRehearsal` is the rehearsal with one addition: when a session's after-close jobs are done, the operator asks
the day's questions in one conversation (history resent with each message, as the chat UI does). The assistant
is the chat's own (`entrypoints.wiring.paper.probe_assistant`: `ChatAssistant` on `LiteLLMChat`, the six real
tools over the rehearsal's database, broker, event search and spend ledger), its model the benchmark's server.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from application.chat.contracts import NullStepSink
from bench._chat_answers import DAILY_SCRIPT
from domain.chat import ChatTurn
from domain.models.trading import Side
from entrypoints.rehearsal import Rehearsal

CHAT_USER = "llm-cost benchmark"
FALLBACK_SYMBOL = "AAPL"


class ChatRehearsal(Rehearsal):
    """A rehearsal whose operator asks the chat `DAILY_SCRIPT` after every session; `chat_log` counts the outcome
    (answers per model, tool calls per tool, failed tools, rounds) per session day."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.chat_log: dict[str, dict[str, Any]] = {}
        self._assistant: Any = None

    async def _session(self, emu: Any, jobs: Any, monitor: Any, day: date) -> None:
        await super()._session(emu, jobs, monitor, day)
        self.chat_log[day.isoformat()] = await self.ask_daily_script(emu.clock.now())

    def assistant(self) -> Any:
        """The chat's assistant on this rehearsal's container (built once)."""
        if self._assistant is None:
            from entrypoints.wiring.paper import probe_assistant

            c = self.container
            self._assistant = probe_assistant(self.settings, c.uow_factory(), c.scope(), c.broker(), self.calendar,
                                              c.market(), c.event_search(), c.spend_ledger(), "memory")
        return self._assistant

    async def subject(self, as_of: datetime) -> str:
        """The stock the "why did you buy" question is about: the last bought in the past week, else a held one."""
        broker = self.container.broker()
        buys = [f for f in await broker.fills_since(as_of - timedelta(days=7)) if f.side is Side.BUY]
        if buys:
            return str(max(buys, key=lambda f: f.at).symbol)
        held = await broker.positions()
        return str(held[0].symbol) if held else FALLBACK_SYMBOL

    async def ask_daily_script(self, as_of: datetime) -> dict[str, Any]:
        """Ask the day's questions in one conversation at `as_of`; what happened, counted."""
        assistant, symbol = self.assistant(), await self.subject(as_of)
        history: list[ChatTurn] = []
        models: Counter[str] = Counter()
        tools: Counter[str] = Counter()
        failed: list[str] = []
        for question in DAILY_SCRIPT:
            reply = await assistant.answer(history, question.format(symbol=symbol), who=CHAT_USER, as_of=as_of,
                                           steps=NullStepSink())
            history.extend(reply.turns)
            models[reply.model] += 1
            tools.update(r.name for r in reply.results)
            failed += [f"{r.name}: {r.text[:120]}" for r in reply.results if not r.ok]
        return {"questions": len(DAILY_SCRIPT), "answered_by": dict(models), "tool_calls": dict(tools),
                "failed_tools": failed, "history_turns": len(history), "subject": symbol}
