"""The bake-off's JSON document: per model its suite figures and its backtest, every paired comparison, notes.

The backtest figures are Quorum's in `application.evals.backtest_eval.evaluate_backtest`'s report of that model,
with the LLM cost per executed trade (a round trip, the report's "trades").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from application.evals.bakeoff import ModelComparison, model_summary
from application.evals.grid import Resampling
from application.evals.run_results import EvalRun
from application.evals.scoring import SCORES

SCHEMA = 1
"""Version of the document."""
MIN_REPEATS = 3
BACKTEST_FIGURES = ("total_return", "annualized_return", "sharpe", "sharpe_ci", "psr", "max_drawdown",
                    "final_equity", "round_trips", "fills", "fees", "llm_cost_usd", "failed_cycles")
COMPARED_WITH = ("spy_buy_and_hold", "equal_weight_buy_and_hold", "rules_only", "no_memory", "random_entries")


def cost_per_trade(llm_cost_usd: float, round_trips: int) -> float | None:
    """What the LLM cost per executed trade (a round trip); None when the backtest closed none."""
    return llm_cost_usd / round_trips if round_trips > 0 else None


def backtest_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """Quorum's figures in one model's backtest report, its cost per trade and its verdicts against the others."""
    if "strategies" not in report:
        return {"error": str(report.get("error", "no backtest report"))}
    quorum = report["strategies"]["quorum"]
    out = {name: quorum.get(name) for name in BACKTEST_FIGURES}
    out["cost_per_trade_usd"] = cost_per_trade(float(quorum.get("llm_cost_usd") or 0.0),
                                               int(quorum.get("round_trips") or 0))
    w = report.get("window", {})
    out["window"] = {k: w.get(k) for k in ("start", "end", "sessions", "symbols")}
    out["verdicts"] = {name: report["comparisons"][name]["verdict"] for name in COMPARED_WITH
                       if name in report.get("comparisons", {})}
    return out


def notes(runs: Mapping[str, EvalRun], comparisons: Sequence[ModelComparison], *, how: Resampling, repeats: int,
          replayed: bool, backtest: bool) -> list[str]:
    """What the figures mean."""
    suites = sorted({s for run in runs.values() for s in run.suites})
    out = [f"Per-row score ({s}): {SCORES[s]}; a failed answer scores 0." for s in suites]
    out.append(f"Paired comparison: B - A of the mean per-row score on the same rows (a row's score is the mean over "
               f"its repeats), a paired bootstrap over rows ({how.n_resamples} resamples); 'A better' or 'B better' "
               f"only when its {how.confidence:.0%} interval excludes zero, else 'no detectable difference'. With "
               f"{len(comparisons)} comparisons, about {len(comparisons) * (1 - how.confidence):.1f} could show a "
               "difference by chance alone.")
    out.append("Latency: median and 95th percentile of the calls that answered (as the provider took them, retries "
               "included; a replay reports the recorded figure); failures count in the failure rate instead.")
    out.append("Cost: litellm's price table applied to every call's tokens, failed calls included (an unusable "
               "answer is paid for too); per decision = cost / answers asked (rows x repeats).")
    if replayed:
        out.append("Replayed from the cassettes: nothing was spent (spent_usd 0); cost_usd is what the recorded "
                   "calls cost.")
    if repeats < MIN_REPEATS:
        out.append(f"Only {repeats} repeat(s): not a bake-off; {MIN_REPEATS} or more show how consistent a model is "
                   "with itself (repeat_agreement).")
    if backtest:
        out.append("Backtest: once per model (repeats apply to the suites) over the same window and symbols; cost "
                   "per trade = Quorum's LLM cost in the backtest / its round trips (the no-memory ablation calls "
                   "the model too, at a cost not counted there).")
    return out


@dataclass(frozen=True)
class BakeoffReport:
    """What the bake-off found.

    Attributes:
        runs: model -> its run on the suites (the same rows for every model).
        comparisons: every pair of models on every suite.
        backtests: model -> its backtest report (or {"error": ...}); empty without a backtest.
        replayed: the answers came from the cassettes.
        resampling: how the intervals and comparisons were resampled.
        repeats: answers per row and model.
    """

    runs: Mapping[str, EvalRun]
    comparisons: Sequence[ModelComparison]
    backtests: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    replayed: bool = False
    resampling: Resampling = field(default_factory=Resampling)
    repeats: int = MIN_REPEATS

    def to_dict(self, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The JSON document (`options`: how the bake-off was run, shown as given)."""
        versions: dict[str, str] = {}
        for run in self.runs.values():
            versions |= dict(run.versions)
        models = {}
        for name, run in self.runs.items():
            models[name] = model_summary(run, replayed=self.replayed)
            if self.backtests:
                models[name]["backtest"] = backtest_summary(self.backtests.get(name, {}))
        return {
            "schema": SCHEMA, "kind": "bakeoff", "repeats": self.repeats, **(options or {}),
            "datasets": dict(sorted(versions.items())), "models": models,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "notes": notes(self.runs, self.comparisons, how=self.resampling, repeats=self.repeats,
                           replayed=self.replayed, backtest=bool(self.backtests)),
        }
