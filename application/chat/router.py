"""DeterministicRouter: the common questions mapped to the chat's tools, for when no model is configured (or its
budget is spent, or it failed).

Rules, in order: a message that is SQL (SELECT ... FROM, WITH name AS) runs as SQL; an imperative control
command ("pause trading", "please resume", "run a cycle", "run evals", "sell everything") becomes a control
proposal, which still waits for the user's confirmation; a control word under a negation ("don't pause") proposes
nothing and says so; "why did you buy NVDA" searches the events about the symbol; then patterns, performance (one
call per window named, today and all time when none), portfolio and recent events, which may combine. Anything else
is answered with what needs a chat model and the list of what the router can answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from application.chat.markdown import results_markdown
from domain.chat import ToolCall, ToolResult, ToolSpec

MODEL_SETTING = "QUORUM_CHAT__MODEL"
MAX_ARG_CHARS = 500
_PREFIX = re.compile(r"^(?:please|pls|kindly|now|ok|okay|hey|hi|quorum|can you|could you|would you|will you|"
                     r"i want you to|i'd like you to|i would like you to|go ahead and|let's|lets|just|then)\b[\s,:!]*")
_CONTROL = (
    ("pause", re.compile(r"^(?:pause|halt|suspend|freeze|stop)\b(?!\s+(?:exits?|loss(?:es)?|orders?)\b)")),
    ("resume", re.compile(r"^(?:resume|unpause|un-pause|restart trading|continue trading|start trading)\b")),
    ("run_cycle", re.compile(r"^(?:run|trigger|start|kick off)\b[^.?!]*\bcycles?\b")),
    ("run_evals", re.compile(r"^(?:run|trigger|start|kick off)\b[^.?!]*\b(?:evals?|evaluations?)\b")),
    ("flatten", re.compile(r"^(?:flatten|liquidate|go to cash\b|(?:sell|close)\s+(?:it all|everything|all of it|"
                           r"all(?:\s+(?:positions|holdings|stocks|shares))?|every position|out)"
                           r"(?:\s+(?:now|today|immediately))?$)")),
)
_NEGATED_CONTROL = re.compile(r"\b(?:don'?t|do not|does not|not|never|no need to|no|shouldn'?t|should not|"
                              r"mustn'?t|won'?t|cannot|can'?t|without)\s+(?:\w+\s+){0,3}?(?:pause|halt|suspend|"
                              r"stop|resume|unpause|flatten|liquidate|sell everything|sell all|close all|"
                              r"run (?:a |the )?(?:trading )?(?:cycle|evals?))\b")
_SINGLE_TRADE = re.compile(r"^(?:buy|sell|short|close|trim|add)\b")
_SQL = re.compile(r"^\s*(?:select\b[\s\S]*\bfrom\b|select\s+[\d'(*]|with\s+[a-z_][a-z0-9_]*\s+as\s*\()", re.I)
_WHY = re.compile(r"\bwhy\b|\breasons?\s+(?:for|behind)\b")
_TICKER = re.compile(r"(?<![\w$])\$?([A-Z]{1,5}(?:\.[A-Z])?)(?![\w&])")
_AFTER_VERB = re.compile(r"\b(?:buy|bought|sell|sold|trade|traded|short|shorted|hold|held|own|add|added|trim|"
                         r"trimmed|exit|exited|close|closed|pick|picked|enter|entered)\s+(?:(?:the|some|more|of|"
                         r"into|shares of|a position in)\s+)*\$?([a-z]{1,5}(?:\.[a-z])?)\b")
_NOT_TICKERS = frozenset({
    "I", "A", "AN", "OK", "US", "USA", "USD", "CEO", "CFO", "ETF", "SQL", "PDT", "API", "LLM", "AI", "IPO", "EPS",
    "PE", "P", "L", "PNL", "ATH", "UTC", "ET", "EST", "EDT", "NY", "NYSE", "FYI", "ID", "UI", "TV", "IT", "ME",
    "MY", "WE", "AM", "PM", "VS", "RSI", "SMA", "EMA", "ATR", "YTD", "MTD", "FAQ", "TLDR", "ASAP", "WHY", "NO",
})
_COMMON_WORDS = (
    "it that this them so too all any now today then more less much many again there here what when why a an the "
    "and or in on at to for of my our your its yes no out back up down early late over off with after before "
    "every just only still even stock stocks share one once twice last first next those these such both each same "
    "other lot yet ever well fast week month year day was is be been me us you we they him her")
_NOT_SYMBOL_WORDS = frozenset(_COMMON_WORDS.split())
_PATTERNS = (
    ("concerns", re.compile(r"\b(?:concerns?|warnings?)\b[^?]*\b(?:loss\w*|losing|lost|preceded)|"
                            r"\bvalidator concerns?\b")),
    ("confidence", re.compile(r"\bconfidence (?:buckets?|levels?|bands?)\b|\bby confidence\b")),
    ("holding_period", re.compile(r"\bholding (?:period|time)s?\b|\bhow long\b[^?]*\bhold")),
    ("exits", re.compile(r"\bstop[- ]?(?:loss )?exits?\b|\btrend exits?\b|\bexit (?:types?|reasons?)\b")),
)
_PATTERNS_ANY = re.compile(r"\bpatterns?\b")
_PERFORMANCE = re.compile(
    r"\bperform\w*|\bhow (?:did|are|have|is|was) (?:we|you|it|things|the (?:fund|portfolio|account))\b|\breturns?\b|"
    r"\bsharpe\b|\bdrawdown\b|\bp&l\b|\bpnl\b|\bprofits?\b|\blosses\b|\balpha\b|\bwin rate\b|\bma(?:de|ke) money\b|"
    r"\bbeat(?:ing)? (?:the )?(?:spy|market)\b|\bup or down\b")
_WINDOWS = re.compile(r"\b(today|daily|this week|last week|weekly|week|7 days|this month|last month|monthly|month|"
                      r"30 days|all[- ]time|overall|since (?:inception|the start|start)|ever|in total|total)\b")
_PORTFOLIO = re.compile(r"\bportfolio\b|\bholdings?\b|\bpositions?\b|\bcash\b|\bexposure\b|\bbuying power\b|"
                        r"\bopen orders?\b|\bstops\b|\bstop[- ]loss(?:es)?\b|\bstop orders?\b|\bequity\b|\bbalance\b|"
                        r"\bwhat do (?:we|you|i) (?:own|hold|have)\b|\bwhat are we holding\b")
_EVENTS = re.compile(r"\bwhat happened\b|\bevents?\b|\bnews\b|\bwhat(?:'s| is) new\b|\blatest\b|\brecent(?:ly)?\b|"
                     r"\bwhat did (?:you|we) do\b|\blast cycle\b|\bactivity\b|\byesterday\b")
_EVENTS_WEAK = re.compile(r"\btrades?\b|\bdecisions?\b|\bfills?\b|\borders?\b|\btraded\b")
_HELP = re.compile(r"^(?:help|\?|what can you do|what do you know|commands)\b")


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """What the router will do with a message.

    Attributes:
        intent: portfolio, performance, events, why, patterns, sql, control, declined or help (several joined by +).
        calls: the tool calls to run, in order (none for declined and help).
        note: what to say besides the results (why nothing was proposed, the help list).
    """

    intent: str
    calls: tuple[ToolCall, ...]
    note: str = ""


class DeterministicRouter:
    """Maps common phrasings to tool calls and composes the results as markdown; same text, same calls.

    Args:
        specs: the tools offered (a `patterns` tool's `kind` enum, if it has one, names the pattern kinds).
    """

    def __init__(self, specs: Sequence[ToolSpec] = ()) -> None:
        self._pattern_kinds = _enum_of(specs, "patterns", "kind")

    def plan(self, text: str, *, call_prefix: str = "route_") -> RoutePlan | None:
        """The tool calls that answer `text`, or None when it needs a model.

        Args:
            text: the user's message.
            call_prefix: prefix of the call ids (`<prefix>1`, `<prefix>2`, ...), unique within a conversation.
        """
        raw = text.strip()
        low = " ".join(raw.lower().replace("\u2019", "'").split())
        calls: list[tuple[str, dict[str, Any]]]
        if _SQL.match(raw):
            return _plan("sql", [("query_sql", {"sql": raw})], call_prefix)
        body = _strip_prefixes(low.rstrip(" .!?"))
        if not body or _HELP.match(body):
            return RoutePlan("help", (), capabilities())
        action = next((a for a, pattern in _CONTROL if pattern.match(body)), None)
        if action == "flatten" and symbols_in(raw, after_verbs=False):
            action = None  # "flatten AAPL" is a single trade, not the whole book
        elif action is not None:
            return _plan("control", [("control", {"action": action, "reason": raw[:MAX_ARG_CHARS]})], call_prefix)
        if negated := _NEGATED_CONTROL.search(low):
            return RoutePlan("declined", (), f"I proposed nothing: “{negated.group(0)}” reads as a negation. To "
                             "act, say it as a command (for example “pause trading”); every action asks you to "
                             "confirm.")
        if action is not None or _SINGLE_TRADE.match(body) or body.startswith(("flatten", "liquidate")):
            return RoutePlan("declined", (), "The chat does not place single orders. Its actions are: pause, resume, "
                             "run a cycle, run evals and flatten (sell everything), each after your confirmation.")
        if _WHY.search(low):
            symbols = symbols_in(raw)
            query = raw[:MAX_ARG_CHARS]
            calls = [("search_events", {"query": query, "symbol": s}) for s in symbols[:3]] or \
                [("search_events", {"query": query})]
            return _plan("why", calls, call_prefix)
        return self._read_plan(raw, low, call_prefix)

    def _read_plan(self, raw: str, low: str, call_prefix: str) -> RoutePlan | None:
        intents: list[str] = []
        calls: list[tuple[str, dict[str, Any]]] = []
        kinds = [k for k, p in _PATTERNS if p.search(low)]
        if _PATTERNS_ANY.search(low) and not kinds:
            kinds = ["all"] if "all" in self._pattern_kinds else [k for k, _ in _PATTERNS]
        if kinds:
            intents.append("patterns")
            calls += [("patterns", {"kind": self._pattern_kind(k)}) for k in kinds]
        elif _PERFORMANCE.search(low):
            intents.append("performance")
            calls += [("performance", {"window": w}) for w in windows_in(low) or ("today", "all")]
        if _PORTFOLIO.search(low):
            intents.append("portfolio")
            calls.append(("portfolio", {}))
        if _EVENTS.search(low) or (not calls and _EVENTS_WEAK.search(low)):
            intents.append("events")
            args: dict[str, Any] = {"query": raw[:MAX_ARG_CHARS], "days": _event_days(low)}
            symbols = symbols_in(raw)
            calls += [("search_events", args | {"symbol": s}) for s in symbols[:3]] or [("search_events", args)]
        return _plan("+".join(intents), calls, call_prefix) if calls else None

    def _pattern_kind(self, kind: str) -> str:
        stem = kind.split("_")[0].rstrip("s")
        return next((k for k in self._pattern_kinds if stem in k.lower()), kind)

    def compose(self, plan: RoutePlan, results: Sequence[ToolResult]) -> str:
        """The answer: the plan's note, then each result as markdown (proposals say they wait for confirmation)."""
        parts = [plan.note] if plan.note else []
        parts.append(results_markdown(results))
        if any(r.name == "control" and r.ok for r in results):
            parts.append("Nothing has been done yet: confirm or cancel below.")
        return "\n\n".join(p for p in parts if p)

    def cannot_answer(self, *, reason: str | None = None) -> str:
        """The answer to a question the router cannot map: it needs a model (and why there is none), and the list
        of what the router answers."""
        head = reason or (f"This question needs a chat model, and none is configured: set `{MODEL_SETTING}` to a "
                          "litellm model string with tool calling (for example `openai/gpt-4o-mini`).")
        return f"{head}\n\n{capabilities()}"


def capabilities() -> str:
    """What the router answers without a model, with example phrasings."""
    return "\n".join((
        "Without a model I can answer:",
        "- **portfolio**: “what do we hold?”, “how much cash?”, “open orders”",
        "- **performance**: “how did we do today / this week / this month / all time?”",
        "- **recent events**: “what happened today?”, “latest events for NVDA”",
        "- **why a trade**: “why did you buy NVDA?”",
        "- **patterns**: “which concerns preceded losses?”, “win rate by confidence”, “holding period”, "
        "“stop exits vs trend exits”",
        "- **control**, each after your confirmation: “pause trading”, “resume trading”, “run a cycle”, "
        "“run evals”, “flatten”",
        "- **SQL**: a message that is a single SELECT over the chat's views",
    ))


def symbols_in(text: str, *, after_verbs: bool = True) -> list[str]:
    """Ticker symbols named in `text`: upper-case words that are not common abbreviations ("I", "A", "CEO"), or,
    in a message without upper case tickers, the word after a trade verb ("why did you buy nvda")."""
    shouting = not any(c.islower() for c in text)
    found = [] if shouting else [m for m in _TICKER.findall(text) if m not in _NOT_TICKERS]
    if not found and after_verbs:
        low = text.lower()
        found = [m.upper() for m in _AFTER_VERB.findall(low) if m not in _NOT_SYMBOL_WORDS]
    return list(dict.fromkeys(found))


def windows_in(low: str) -> tuple[str, ...]:
    """The performance windows named in a lower-case message, in the order named."""
    names = {"today": "today", "daily": "today", "month": "month", "monthly": "month", "30 days": "month"}
    found: list[str] = []
    for word in _WINDOWS.findall(low):
        window = names.get(word) or ("week" if "week" in word or word == "7 days" else
                                     "month" if "month" in word else "all")
        if window not in found:
            found.append(window)
    return tuple(found)


def _event_days(low: str) -> int:
    if "today" in low:
        return 1
    if "yesterday" in low:
        return 2
    return 30 if "month" in low else 7


def _strip_prefixes(body: str) -> str:
    while (m := _PREFIX.match(body)) and m.end() > 0:
        body = body[m.end():]
    return body


def _plan(intent: str, calls: Sequence[tuple[str, dict[str, Any]]], prefix: str) -> RoutePlan:
    return RoutePlan(intent, tuple(ToolCall(f"{prefix}{n}", name, args) for n, (name, args) in enumerate(calls, 1)))


def _enum_of(specs: Sequence[ToolSpec], tool: str, argument: str) -> tuple[str, ...]:
    for spec in specs:
        if spec.name == tool:
            values = spec.parameters.get("properties", {}).get(argument, {}).get("enum", ())
            return tuple(str(v) for v in values)
    return ()
