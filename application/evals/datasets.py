"""Rows of the signal, risk and validator datasets, each as an anonymised twin and a named twin."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from application.evals.evidence import EvidencePool, Match, as_evidence, evidence_text
from application.evals.hashing import pick
from application.evals.history import History
from application.evals.outcomes import label
from application.evals.sampling import Scenario
from application.evals.views import View
from domain.agents.schemas import (
    MemoryEvidence,
    RiskCandidate,
    RiskContext,
    SignalContext,
    SignalProposal,
    SymbolFeatures,
    ValidatorCandidate,
    ValidatorContext,
)
from domain.evals.barriers import Barriers
from domain.evals.reference import (
    reference_barriers,
    reference_confidence,
    reference_position_pct,
)
from domain.evals.rows import (
    Outcome,
    ReferenceSizing,
    RiskLimitsRow,
    RiskRow,
    RuleVerdict,
    SignalRow,
    Source,
    ValidatorRow,
)
from domain.risk.config import RiskSettings
from domain.validator import validate_proposal

EQUITIES = (650.0, 2_000.0, 10_000.0, 100_000.0)
"""Account sizes of the risk scenarios (USD): the real account first."""
GROSS_EXPOSURES = (0.0, 0.25, 0.5, 0.75, 0.9)
"""Share of equity already invested in the risk scenarios."""


@dataclass(frozen=True)
class Twins:
    """Rows of one dataset: the anonymised twins and the named twins, in the same order and with the same ids."""

    anonymised: list[SignalRow] | list[RiskRow] | list[ValidatorRow]
    named: list[SignalRow] | list[RiskRow] | list[ValidatorRow]


@dataclass(frozen=True)
class RowBuilder:
    """Builds the rows of sampled scenarios.

    Args:
        history: the build's history (dates of the entry and the exit for the named twins).
        risk: the risk settings of the reference barriers, sizes and limits.
        horizon: the time limit of the labels.
        sectors: the sector ETFs shown in market conditions.
        seed: the build's seed (account sizes of the risk scenarios).
    """

    history: History
    risk: RiskSettings
    horizon: int
    sectors: frozenset[str]
    seed: int

    def views(self, sc: Scenario) -> tuple[View, View]:
        """The anonymised and the named view of a scenario."""
        s = sc.snapshot
        return (View.anonymised(sc.number + 1, s.features.price, self.sectors),
                View.named(s.symbol, s.as_of.isoformat(), s.day.isoformat(), self.sectors))

    def barriers(self, shown: SymbolFeatures) -> Barriers:
        """The reference barriers of a scenario (from the rounded ATR both twins show)."""
        return reference_barriers(shown.atr_pct, self.risk, self.horizon)

    def source(self, sc: Scenario, outcome: Outcome, evidence: tuple[str, ...] = ()) -> Source:
        """Where the named twin comes from."""
        days = self.history.bars[sc.snapshot.symbol].days
        return Source(symbol=sc.snapshot.symbol, day=sc.snapshot.day.isoformat(),
                      entry_day=days[sc.index + 1].isoformat(),
                      exit_day=days[sc.index + outcome.exit_session].isoformat(),
                      close=sc.snapshot.features.price, evidence=evidence)

    def limits(self) -> RiskLimitsRow:
        """The hard limits of the risk settings."""
        r = self.risk
        return RiskLimitsRow(max_position_pct=r.max_position_pct, min_stop_pct=r.min_stop_pct,
                             max_stop_pct=r.max_stop_pct, loss_limit_pct=r.max_daily_loss_pct,
                             max_gross_exposure_pct=r.max_gross_exposure_pct)


def signal_rows(b: RowBuilder, scenarios: list[Scenario]) -> Twins:
    """The signal dataset: one symbol and the market per row."""
    anon: list[SignalRow] = []
    named: list[SignalRow] = []
    for sc in scenarios:
        id_ = f"sig-{sc.number + 1:04d}"
        rows = []
        for view in b.views(sc):
            shown = view.features(sc.snapshot.features)
            ctx = SignalContext(as_of=view.as_of, market=view.conditions(sc.snapshot.conditions), symbols=(shown,))
            rows.append((ctx, label(sc.forward, b.barriers(shown))))
        (a_ctx, outcome), (n_ctx, _) = rows
        anon.append(SignalRow(id=id_, twin="anonymised", stratum=sc.stratum, context=a_ctx, outcome=outcome))
        named.append(SignalRow(id=id_, twin="named", stratum=sc.stratum, context=n_ctx, outcome=outcome,
                               source=b.source(sc, outcome)))
    return Twins(anon, named)


def _risk_context(b: RowBuilder, sc: Scenario, view: View) -> tuple[RiskContext, ReferenceSizing, Barriers]:
    shown = view.features(sc.snapshot.features)
    confidence = reference_confidence(shown)
    key = (sc.snapshot.symbol, sc.snapshot.day.isoformat())
    equity = EQUITIES[pick(b.seed, len(EQUITIES), "risk", *key, "equity")]
    gross = GROSS_EXPOSURES[pick(b.seed, len(GROSS_EXPOSURES), "risk", *key, "gross")]
    candidate = RiskCandidate(symbol=view.symbol, action="BUY", confidence=confidence, price=shown.price,
                              volatility_20d=shown.volatility_20d, atr_pct=shown.atr_pct, held_qty=0.0)
    ctx = RiskContext(as_of=view.as_of, equity=equity, cash=round(equity * (1 - gross), 2), gross_exposure_pct=gross,
                      max_position_pct=b.risk.max_position_pct, default_stop_pct=b.risk.default_stop_pct,
                      candidates=(candidate,))
    barriers = b.barriers(shown)
    reference = ReferenceSizing(position_pct=reference_position_pct(shown.volatility_20d, confidence, b.risk),
                                stop_pct=barriers.stop_pct, take_profit_pct=barriers.take_profit_pct or 0.0)
    return ctx, reference, barriers


def risk_rows(b: RowBuilder, scenarios: list[Scenario]) -> Twins:
    """The risk dataset: one BUY candidate per row, on accounts of several sizes and exposures."""
    anon: list[RiskRow] = []
    named: list[RiskRow] = []
    for sc in scenarios:
        id_ = f"risk-{sc.number + 1:04d}"
        (a_ctx, ref, barriers), (n_ctx, _, _) = (_risk_context(b, sc, v) for v in b.views(sc))
        outcome = label(sc.forward, barriers)
        anon.append(RiskRow(id=id_, twin="anonymised", context=a_ctx, limits=b.limits(), reference=ref,
                            outcome=outcome))
        named.append(RiskRow(id=id_, twin="named", context=n_ctx, limits=b.limits(), reference=ref,
                             outcome=outcome, source=b.source(sc, outcome)))
    return Twins(anon, named)


def _evidence(b: RowBuilder, sc: Scenario, view: View, matches: tuple[Match, ...]) -> tuple[MemoryEvidence, ...]:
    out = []
    now = b.history.session_number(sc.snapshot.day)
    for j, m in enumerate(matches):
        t = m.trade
        if view.twin == "anonymised":
            shown = View.anonymised(0, t.features.price, ()).features(t.features, symbol=f"PAST_{j + 1}")
            when = f"{now - b.history.session_number(t.day)} sessions before day 0"
        else:
            shown = View.named(t.symbol, "", "", ()).features(t.features)
            when = f"on {t.day.isoformat()}, closed {t.exit_day.isoformat()}"
        out.append(as_evidence(m, evidence_text(m, shown, when)))
    return tuple(out)


def _validator_context(b: RowBuilder, sc: Scenario, view: View,
                       matches: tuple[Match, ...]) -> tuple[ValidatorContext, RuleVerdict, Barriers]:
    shown = view.features(sc.snapshot.features)
    evidence = _evidence(b, sc, view, matches)
    proposal = SignalProposal(symbol=view.symbol, action="BUY", confidence=reference_confidence(shown),
                              reasoning=f"uptrend with momentum: 20d {shown.return_20d:+.1%}, 60d "
                                        f"{shown.return_60d:+.1%}, vol {shown.volatility_20d:.0%}")
    rules = validate_proposal(proposal, shown, evidence, b.risk.validator)
    barriers = b.barriers(shown)
    candidate = ValidatorCandidate(
        symbol=view.symbol, action="BUY", confidence=round(rules.confidence, 4),
        position_pct=reference_position_pct(shown.volatility_20d, proposal.confidence, b.risk),
        stop_loss_pct=barriers.stop_pct, reasoning=proposal.reasoning, similar_trades=evidence,
        rule_warnings=rules.warnings)
    ctx = ValidatorContext(as_of=view.as_of, market=view.conditions(sc.snapshot.conditions), candidates=(candidate,))
    share = None if rules.loser_share is None else round(rules.loser_share, 4)
    return ctx, RuleVerdict(approved=rules.approved, loser_share=share, warnings=rules.warnings), barriers


def validator_rows(b: RowBuilder, scenarios: list[Scenario], pool: EvidencePool, k: int) -> Twins:
    """The validator dataset: one BUY candidate per row with the similar past trades closed before the snapshot."""
    anon: list[ValidatorRow] = []
    named: list[ValidatorRow] = []
    for sc in scenarios:
        id_ = f"val-{sc.number + 1:04d}"
        matches = pool.nearest(sc.snapshot.features, sc.snapshot.day, k)
        a_view, n_view = b.views(sc)
        a_ctx, a_rules, barriers = _validator_context(b, sc, a_view, matches)
        n_ctx, n_rules, _ = _validator_context(b, sc, n_view, matches)
        outcome = label(sc.forward, barriers)
        used = tuple(f"{m.trade.symbol} {m.trade.day.isoformat()}..{m.trade.exit_day.isoformat()}" for m in matches)
        anon.append(ValidatorRow(id=id_, twin="anonymised", context=a_ctx, rules=a_rules, outcome=outcome))
        named.append(ValidatorRow(id=id_, twin="named", context=n_ctx, rules=n_rules, outcome=outcome,
                                  source=b.source(sc, outcome, used)))
    return Twins(anon, named)


def common_sectors(scenarios: Collection[Scenario]) -> frozenset[str]:
    """Sector ETFs present in the market conditions of every scenario."""
    sets = [set(sc.snapshot.conditions.sector_returns_20d) for sc in scenarios]
    return frozenset(set.intersection(*sets)) if sets else frozenset()
