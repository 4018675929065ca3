"""LLMPicker: one batched prompt rates the shortlisted candidates; any failure is an empty result, never a crash.

The prompt carries the portfolio, the market conditions with the most similar past conditions (and
what followed them) and every candidate's features and similar past trades. The answer is validated
against `LLMPickerOutput`; scores outside 0..1 are clipped, picks naming a symbol that was not asked
about are dropped and logged, and a repeated symbol keeps its first pick. A failed call (transport,
invalid JSON, schema, budget) gives no results and a logged reason; the gateway records an
LLM_FAILED event for the failures it sees and the picker adds one for anything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import structlog

from application import prompts
from application.llm_gateway import LLMGateway
from application.prompts import COMPACT_STYLE, PromptStyle
from domain.discovery.events import picker_failed
from domain.discovery.llm_schema import LLMPickerContext, LLMPickerOutput
from domain.discovery.picker import PickerResult
from domain.events import Event
from domain.ports.llm import LLMRequest, Message

log = structlog.get_logger(__name__)

PICKER_ROLE = (
    "You are the discovery picker of a cautious US-equity trading system with a small account. Rate every "
    "candidate symbol from 0 (avoid) to 1 (strong candidate for the watchlist) with a one-sentence reason. "
    "Use trend, momentum, volatility and liquidity, the sector mix of the portfolio (prefer diversification), "
    "the current market conditions and what happened after the most similar past conditions, and the outcomes "
    "of similar past trades. Rate only the candidates given; never invent symbols."
)


@dataclass(frozen=True)
class LLMPickerRun:
    """What the LLM picker produced in one run.

    Attributes:
        results: one PickerResult per valid pick (picker "llm", passed, score clipped to 0..1).
        asked: the candidate symbols sent in the prompt.
        dropped: symbols of picks that were not asked about (or repeated).
        error: why there are no results, when the call failed; None otherwise.
        events: events the caller should store (failures the gateway did not record).
    """

    results: list[PickerResult]
    asked: tuple[str, ...]
    dropped: tuple[str, ...] = ()
    error: str | None = None
    events: tuple[Event, ...] = field(default=())


def render(context: LLMPickerContext, style: PromptStyle = COMPACT_STYLE) -> tuple[Message, ...]:
    """System prompt first (the role and how to answer), then the typed context as JSON (see `application.prompts`)."""
    return (Message("system", prompts.system_prompt(PICKER_ROLE, LLMPickerOutput, style)),
            Message("user", prompts.user_content(context, style, agent="picker")))


class LLMPicker:
    """Asks the "picker" agent's LLM, through the gateway, to rate the shortlisted candidates."""

    name = "llm"

    def __init__(self, gateway: LLMGateway, *, scope: str, style: PromptStyle = COMPACT_STYLE) -> None:
        """Create the picker.

        Args:
            gateway: routes the "picker" agent to its LLM and holds the daily spending cap.
            scope: the scope events are written under.
            style: how the prompt is written (see `application.prompts`).
        """
        self._gateway = gateway
        self._scope = scope
        self._style = style

    async def pick(self, context: LLMPickerContext, *, as_of: datetime) -> LLMPickerRun:
        """Rate the candidates of `context` in one call.

        Args:
            context: the candidates (already capped), portfolio and market.
            as_of: time of the run (budget day, logs).

        Returns:
            The picks as picker results; empty with `error` set when the call failed.
        """
        asked = tuple(c.symbol for c in context.candidates)
        if not asked:
            return LLMPickerRun([], asked)
        request = LLMRequest(agent="picker", messages=render(context, self._style), output_schema=LLMPickerOutput,
                             context=context, as_of=as_of)
        try:
            decision = await self._gateway.ask(request)
        except Exception as exc:  # noqa: BLE001 - the LLM picker must never take a discovery run down
            reason = f"{type(exc).__name__}: {str(exc)[:500]}"
            log.warning("llm_picker_failed", reason=reason, candidates=len(asked))
            event = picker_failed(at=as_of, scope=self._scope, reason=reason)
            return LLMPickerRun([], asked, error=reason, events=(event,))
        if decision is None:
            reason = "no answer from the picker LLM (call failed or daily budget reached; see the LLM events)"
            log.warning("llm_picker_failed", reason=reason, candidates=len(asked))
            return LLMPickerRun([], asked, error=reason)
        return self._results(decision.output, asked)

    def _results(self, output: LLMPickerOutput, asked: tuple[str, ...]) -> LLMPickerRun:
        wanted = set(asked)
        results: dict[str, PickerResult] = {}
        dropped: list[str] = []
        for pick in output.picks:
            symbol = pick.symbol.strip().upper()
            if symbol not in wanted or symbol in results:
                dropped.append(symbol)
                log.warning("llm_picker_dropped_pick", symbol=symbol,
                            why="not a candidate" if symbol not in wanted else "repeated")
                continue
            score = min(1.0, max(0.0, pick.score))
            reasons = [pick.reason.strip() or "no reason given"]
            if score != pick.score:
                reasons.append(f"score {pick.score:g} clipped to {score:g}")
                log.info("llm_picker_score_clipped", symbol=symbol, score=pick.score, clipped=score)
            results[symbol] = PickerResult(self.name, symbol, score, True, tuple(reasons), {"raw_score": pick.score})
        error = None
        if not results and output.picks:
            error = f"every pick was dropped ({len(dropped)} named symbols that were not asked about)"
            log.warning("llm_picker_failed", reason=error, candidates=len(asked))
        return LLMPickerRun([results[s] for s in asked if s in results], asked, tuple(dropped), error)
