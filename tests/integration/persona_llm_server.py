"""OpenAI-compatible servers with a persona: each answers every agent from the context it was sent.

A `PersonaServer` is an `OpenAIStubServer` whose answer is computed from the request (the agent's context, sent
as JSON in a user message) rather than scripted in advance, so that several servers can answer the same rows
differently: `BULLISH` buys whatever it does not hold (and sells what it holds), `CAUTIOUS` buys only an orderly,
liquid uptrend and answers slowly, `FLAKY` is bullish but every third answer is not JSON at all. Servers that
share an `InFlight` gauge count the requests they are working on together (from arrival to the moment the answer
is sent, so never more than the clients have in flight).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from tests.integration.openai_stub_server import Behaviour, OpenAIStubServer, RecordedRequest, _Handler

Features = dict[str, Any]


def buys_anything(s: Features) -> bool:
    return True


def buys_orderly_uptrends(s: Features) -> bool:
    return (s["return_20d"] > 0 and s["price"] > s["sma_50"] and s["return_1d"] > -0.03 and s["volume_ratio"] < 2.5
            and s["avg_dollar_volume_20d"] >= 20e6)


@dataclass(frozen=True)
class Persona:
    """How a server answers.

    Attributes:
        name: what its reasoning says it is.
        buys: signal agent: whether to buy a symbol it does not hold, from the symbol's features.
        confidence: the confidence of its calls.
        position_pct: risk agent: the position it asks for.
        stop_pct: risk agent: the stop distance it asks for.
        delay_s: server-side wait before every answer.
        invalid_every: every n-th request is answered with text that is not JSON (0: never).
    """

    name: str
    buys: Callable[[Features], bool]
    confidence: float = 0.8
    position_pct: float = 0.05
    stop_pct: float = 0.05
    delay_s: float = 0.0
    invalid_every: int = 0

    def signal(self, ctx: dict[str, Any]) -> dict[str, Any]:
        proposals = []
        for s in ctx["symbols"]:
            action = "SELL" if s.get("held_qty") else "BUY" if self.buys(s) else "HOLD"
            proposals.append({"symbol": s["symbol"], "action": action, "confidence": self.confidence,
                              "reasoning": f"{self.name}: 20-day return {s['return_20d']:+.1%}, so {action}"})
        return {"proposals": proposals}

    def risk(self, ctx: dict[str, Any]) -> dict[str, Any]:
        return {"assessments": [
            {"symbol": c["symbol"], "position_pct": self.position_pct, "stop_loss_pct": self.stop_pct,
             "take_profit_pct": 2 * self.stop_pct, "reasoning": f"{self.name}: ATR {c['atr_pct']:.1%}"}
            for c in ctx["candidates"]]}

    def validator(self, ctx: dict[str, Any]) -> dict[str, Any]:
        return {"verdicts": [
            {"symbol": c["symbol"], "approve": self.buys is buys_anything or not c.get("rule_warnings"),
             "confidence_adjustment": 0.0, "warnings": [], "reasoning": f"{self.name}: judged {c['symbol']}"}
            for c in ctx["candidates"]]}

    def answer(self, body: dict[str, Any]) -> str:
        ctx = context_of(body)
        if "symbols" in ctx:
            return json.dumps(self.signal(ctx))
        if "equity" in ctx:
            return json.dumps(self.risk(ctx))
        return json.dumps(self.validator(ctx))

    def behaviour(self, body: dict[str, Any], nth: int) -> Behaviour:
        if self.invalid_every and nth % self.invalid_every == 0:
            return Behaviour("invalid_json")
        content = self.answer(body)
        return Behaviour("slow", content, delay_s=self.delay_s) if self.delay_s else Behaviour("ok", content)


def context_of(body: dict[str, Any]) -> dict[str, Any]:
    """The agent's context: the first user message that is a JSON object with an `as_of`."""
    for m in body.get("messages", []):
        if m.get("role") != "user":
            continue
        try:
            found = json.loads(str(m.get("content", "")))
        except ValueError:
            continue
        if isinstance(found, dict) and "as_of" in found:
            return found
    raise ValueError("no agent context in the request")


BULLISH = Persona("bullish", buys_anything)
CAUTIOUS = Persona("cautious", buys_orderly_uptrends, confidence=0.6, position_pct=0.03, stop_pct=0.04,
                   delay_s=0.02)
FLAKY = Persona("flaky", buys_anything, confidence=0.7, invalid_every=3)


class InFlight:
    """Requests being worked on, and the most at once, across the servers sharing it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0

    def enter(self) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def leave(self) -> None:
        with self._lock:
            self.now -= 1


class _CountingHandler(_Handler):
    stub: PersonaServer
    _counted = False

    def do_POST(self) -> None:
        self._counted = True
        self.stub.gauge.enter()
        try:
            super().do_POST()
        finally:
            self._leave()

    def _leave(self) -> None:
        if self._counted:
            self._counted = False
            self.stub.gauge.leave()

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._leave()  # before the client can have the answer, and so start another request
        super()._send(status, payload, headers)


@dataclass
class PersonaServer(OpenAIStubServer):
    """An `OpenAIStubServer` answering as `persona` (scripted behaviours are ignored)."""

    persona: Persona = BULLISH
    gauge: InFlight = field(default_factory=InFlight)

    def _next(self, request: RecordedRequest) -> Behaviour:
        with self._lock:
            self.requests.append(request)
            nth = len(self.requests)
        return self.persona.behaviour(request.body, nth)

    def start(self) -> PersonaServer:
        handler = type("Handler", (_CountingHandler,), {"stub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"persona-{self.persona.name}",
                                        daemon=True)
        self._thread.start()
        return self
