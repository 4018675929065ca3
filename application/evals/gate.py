"""The regression gate: a candidate eval run against a baseline run, suite by suite, paired by dataset row.

A suite's primary figure is its score: the mean per-row score (higher is better) over the rows both runs
scored. A suite REGRESSES only when both hold:

1. the score dropped by more than `max_drop` (10%) relative to the baseline's, and
2. the paired bootstrap interval of (candidate - baseline) over those rows lies entirely below zero (its
   lower bound of baseline - candidate excludes zero): the drop is not noise.

A drop over 10% whose interval includes zero is "noise"; anything else is "ok" ("improved" when the score
rose and the interval lies above zero). Rows only one run scored are reported and left out; with fewer than
`min_rows` rows in common the suite is "refused" (the runs did not score the same scenarios). A suite of the
baseline the candidate lacks is "missing" and counts as refused; a suite only the candidate has is "new".
Overall: "regression" if any suite regressed, else "refused" if any suite was refused or missing, else
"noise" if any suite was noise, else "ok".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from application.evals.results import EvalDocument, SuiteDocument
from domain.evals.bootstrap import paired_bootstrap

SuiteStatus = Literal["ok", "improved", "noise", "regression", "refused", "missing", "new", "skipped"]
Overall = Literal["ok", "noise", "regression", "refused"]
PRIMARY = "score"
"""The name of the figure the gate compares: the mean per-row score."""


@dataclass(frozen=True)
class GateConfig:
    """How the gate decides.

    Attributes:
        max_drop: a relative drop of the score larger than this may be a regression (0.10 = 10%).
        min_rows: fewer rows in common than this and the suite is refused.
        confidence: coverage of the paired bootstrap interval.
        n_resamples: bootstrap resamples.
        seed: seed of the resampling (the same runs give the same verdict).
    """

    max_drop: float = 0.10
    min_rows: int = 20
    confidence: float = 0.95
    n_resamples: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.max_drop < 1:
            raise ValueError(f"max_drop must be in (0, 1), got {self.max_drop}")
        if self.min_rows < 2:
            raise ValueError(f"min_rows must be at least 2, got {self.min_rows}")


@dataclass(frozen=True)
class SuiteVerdict:
    """The gate's verdict on one suite, with its figures (None where not computed).

    Attributes:
        suite: the suite's name.
        status: ok, improved, noise, regression, refused, missing, new or skipped (neither run has row scores).
        baseline: the baseline's mean score over the common rows.
        candidate: the candidate's mean score over the common rows.
        relative_drop: (baseline - candidate) / |baseline| (negative: the score rose).
        drop_low: lower bound of the paired bootstrap interval of baseline - candidate.
        drop_high: upper bound of that interval.
        common_rows: rows both runs scored.
        only_baseline: rows only the baseline scored.
        only_candidate: rows only the candidate scored.
        reason: one line in words.
    """

    suite: str
    status: SuiteStatus
    reason: str
    baseline: float | None = None
    candidate: float | None = None
    relative_drop: float | None = None
    drop_low: float | None = None
    drop_high: float | None = None
    common_rows: int = 0
    only_baseline: int = 0
    only_candidate: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly form (None for NaN)."""
        def num(x: float | None) -> float | None:
            return None if x is None or not math.isfinite(x) else round(x, 6)

        return {"suite": self.suite, "status": self.status, "metric": PRIMARY, "baseline": num(self.baseline),
                "candidate": num(self.candidate), "relative_drop": num(self.relative_drop),
                "drop_interval": [num(self.drop_low), num(self.drop_high)], "common_rows": self.common_rows,
                "only_baseline": self.only_baseline, "only_candidate": self.only_candidate, "reason": self.reason}


@dataclass(frozen=True)
class GateReport:
    """The gate's verdict on a candidate run.

    Attributes:
        status: regression, refused, noise or ok.
        suites: one verdict per suite of either run, by name.
        config: how it was decided.
        notes: things the reader should know (different LLMs or dataset versions).
    """

    status: Overall
    suites: tuple[SuiteVerdict, ...]
    config: GateConfig
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def regression(self) -> bool:
        """Whether a suite really regressed."""
        return self.status == "regression"

    def summary(self) -> str:
        """One line per suite, the overall verdict first."""
        lines = [f"gate: {self.status.upper()} (a regression needs a drop > {self.config.max_drop:.0%} whose "
                 f"{self.config.confidence:.0%} paired bootstrap interval excludes zero)"]
        lines += [f"  {v.suite}: {v.status} - {v.reason}" for v in self.suites]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly form."""
        c = self.config
        return {"status": self.status, "suites": {v.suite: v.to_json() for v in self.suites},
                "notes": list(self.notes),
                "config": {"max_drop": c.max_drop, "min_rows": c.min_rows, "confidence": c.confidence,
                           "n_resamples": c.n_resamples, "seed": c.seed}}


def relative_drop(baseline: float, candidate: float) -> float:
    """(baseline - candidate) / |baseline|; for a zero baseline, +inf when the candidate is lower, else 0."""
    if abs(baseline) > 1e-12:
        return (baseline - candidate) / abs(baseline)
    return math.inf if candidate < baseline else 0.0


def _pct(x: float) -> str:
    return f"{x:+.1%}" if math.isfinite(x) else ("+inf" if x > 0 else "-inf")


def compare_scores(suite: str, baseline: Mapping[str, float], candidate: Mapping[str, float],
                   config: GateConfig = GateConfig()) -> SuiteVerdict:
    """The verdict on one suite from its per-row scores (see the module docstring)."""
    common = sorted(set(baseline) & set(candidate))
    only_b, only_c = len(set(baseline) - set(candidate)), len(set(candidate) - set(baseline))
    rows: dict[str, Any] = {"common_rows": len(common), "only_baseline": only_b, "only_candidate": only_c}
    mismatch = f" ({only_b} rows only in the baseline, {only_c} only in the candidate)" if only_b or only_c else ""
    if len(common) < config.min_rows:
        return SuiteVerdict(suite, "refused", f"only {len(common)} rows in common, fewer than {config.min_rows}"
                            f"{mismatch}: the runs did not score the same scenarios", **rows)
    b = np.array([baseline[r] for r in common], dtype=np.float64)
    c = np.array([candidate[r] for r in common], dtype=np.float64)
    test = paired_bootstrap(b, c, better="higher", n_resamples=config.n_resamples, confidence=config.confidence,
                            seed=config.seed)
    drop = relative_drop(test.baseline, test.candidate)
    low, high = 0.0 - test.difference.high, 0.0 - test.difference.low        # baseline - candidate (no -0.0)
    figures: dict[str, Any] = {"baseline": test.baseline, "candidate": test.candidate, "relative_drop": drop,
                               "drop_low": low, "drop_high": high, **rows}
    span = (f"score {test.baseline:.4f} -> {test.candidate:.4f} ({_pct(0.0 - drop)}), baseline - candidate "
            f"{test.baseline - test.candidate + 0.0:+.4f} [{low:+.4f}, {high:+.4f}] on {len(common)} rows{mismatch}")
    if drop > config.max_drop and test.regression:
        return SuiteVerdict(suite, "regression", f"{span}: dropped more than {config.max_drop:.0%} and the "
                            "interval excludes zero", **figures)
    if drop > config.max_drop:
        return SuiteVerdict(suite, "noise", f"{span}: dropped more than {config.max_drop:.0%} but the interval "
                            "includes zero", **figures)
    if test.improvement:
        return SuiteVerdict(suite, "improved", f"{span}: better, the interval excludes zero", **figures)
    return SuiteVerdict(suite, "ok", span, **figures)


def _suite_verdict(name: str, base: SuiteDocument | None, cand: SuiteDocument | None,
                   config: GateConfig) -> SuiteVerdict:
    if cand is None:
        return SuiteVerdict(name, "missing", "the baseline has this suite, the candidate does not")
    if base is None:
        return SuiteVerdict(name, "new", "the candidate has this suite, the baseline does not",
                            only_candidate=len(cand.scores))
    if not base.scores and not cand.scores:
        return SuiteVerdict(name, "skipped", "no per-row scores in either run (nothing to pair)")
    return compare_scores(name, base.scores, cand.scores, config)


def _notes(baseline: EvalDocument, candidate: EvalDocument) -> tuple[str, ...]:
    notes = []
    if baseline.llm_label != candidate.llm_label:
        notes.append(f"different LLMs: baseline {baseline.llm_label}, candidate {candidate.llm_label}")
    changed = sorted(n for n in set(baseline.datasets) & set(candidate.datasets)
                     if baseline.datasets[n] != candidate.datasets[n])
    if changed:
        notes.append("different dataset versions: " + ", ".join(
            f"{n} {baseline.datasets[n]} -> {candidate.datasets[n]}" for n in changed))
    for name in sorted(set(baseline.suites) & set(candidate.suites)):
        before, after = baseline.suites[name].failures, candidate.suites[name].failures
        if after > before:
            notes.append(f"{name}: {after} failed calls (baseline {before}); a failed call scores 0 (an outage, the "
                         "spend cap, or a cassette missing from a replay)")
    return tuple(notes)


def _overall(verdicts: tuple[SuiteVerdict, ...]) -> Overall:
    statuses = {v.status for v in verdicts}
    if "regression" in statuses:
        return "regression"
    if statuses & {"refused", "missing"} or not statuses - {"new", "skipped"}:
        return "refused"
    if "noise" in statuses:
        return "noise"
    return "ok"


def gate(baseline: EvalDocument, candidate: EvalDocument, config: GateConfig = GateConfig()) -> GateReport:
    """Compare `candidate` with `baseline`, suite by suite.

    Args:
        baseline: the run to hold the candidate to.
        candidate: the run under test.
        config: thresholds, bootstrap size and seed.

    Returns:
        A verdict per suite (in name order) and overall; "refused" overall also when no suite could be compared.
    """
    names = sorted(set(baseline.suites) | set(candidate.suites))
    verdicts = tuple(_suite_verdict(n, baseline.suites.get(n), candidate.suites.get(n), config) for n in names)
    return GateReport(_overall(verdicts), verdicts, config, _notes(baseline, candidate))
