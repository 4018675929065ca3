"""The regression gate fires on a real regression and stays quiet on noise, an improvement and re-runs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from application.evals.gate import GateConfig, compare_scores, gate, relative_drop
from application.evals.results import DocumentError, EvalDocument, parse_document

ROWS = 400


def doc(suites: dict[str, dict[str, float]], *, llm: str = "offline", datasets: dict[str, str] | None = None,
        **extra: Any) -> EvalDocument:
    body = {"schema": 1, "llm": llm, "datasets": datasets or {"signal": "44905196b5c0"},
            "suites": {name: {"metrics": {"accuracy": {"value": float(np.mean(list(s.values()))), "low": None,
                                                       "high": None, "n": len(s)}},
                              "scores": s, "failures": 0, "latency_ms": {"p50": 1.0, "p95": 2.0}, "tokens": 0,
                              "cost_usd": 0.0} for name, s in suites.items()},
            "memorisation": None, **extra}
    return parse_document(body)


def difficulty(seed: int, n: int = ROWS) -> np.ndarray:
    """Per-row chance of a correct answer, mean 0.6: some rows easy, some hard, as in a real dataset."""
    return np.random.default_rng(seed).beta(1.2, 0.8, size=n)


def draw(p: np.ndarray, seed: int) -> dict[str, float]:
    """One run's 0/1 correctness per row."""
    hits = np.random.default_rng(seed).random(len(p)) < p
    return {f"r{i:04d}": float(h) for i, h in enumerate(hits)}


def flip_correct(scores: dict[str, float], share: float, seed: int) -> dict[str, float]:
    """`share` of the correct answers turned wrong."""
    rng = np.random.default_rng(seed)
    return {k: 0.0 if v == 1.0 and rng.random() < share else v for k, v in scores.items()}


def perturb(scores: dict[str, float], share: float, seed: int) -> dict[str, float]:
    """`share` of all rows flipped either way (a re-run that changed its mind on a few rows)."""
    rng = np.random.default_rng(seed)
    return {k: 1.0 - v if rng.random() < share else v for k, v in scores.items()}


FAST = GateConfig(n_resamples=1000)


@pytest.mark.parametrize("seed", range(5))
def test_the_gate_fires_when_30_percent_of_correct_answers_are_flipped(seed: int) -> None:
    base = draw(difficulty(seed), seed)
    report = gate(doc({"signal": base}), doc({"signal": flip_correct(base, 0.30, seed + 100)}), FAST)
    [suite] = report.suites
    assert report.status == "regression" and report.regression
    assert suite.status == "regression"
    assert suite.relative_drop is not None and suite.relative_drop > 0.2
    assert suite.drop_low is not None and suite.drop_low > 0
    assert suite.common_rows == ROWS


@pytest.mark.parametrize("seed", range(10))
def test_a_rerun_that_changes_a_few_answers_never_fires(seed: int) -> None:
    base = draw(difficulty(seed), seed)
    report = gate(doc({"signal": base}), doc({"signal": perturb(base, 0.05, seed + 1)}), FAST)
    assert report.status in ("ok", "noise") and not report.regression


def test_equal_quality_reruns_rarely_fire_and_never_on_a_small_drop() -> None:
    """A fresh draw of the same model (another seed) on every row: the 95% gate's false alarms stay rare."""
    fired = 0
    for seed in range(60):
        p = difficulty(seed)
        report = gate(doc({"s": draw(p, 2 * seed)}), doc({"s": draw(p, 2 * seed + 1)}), FAST)
        [v] = report.suites
        assert v.status != "regression" or (v.relative_drop is not None and v.relative_drop > 0.10)
        fired += report.regression
    assert fired <= 3                       # about 1 in 50 expected (one side of a 95% interval, and > 10%)


def test_an_improvement_is_never_a_regression() -> None:
    base = draw(difficulty(7), 7)
    better = {k: 1.0 if v == 0.0 and i % 3 == 0 else v for i, (k, v) in enumerate(base.items())}
    report = gate(doc({"signal": base}), doc({"signal": better}), FAST)
    assert report.status == "ok"
    assert report.suites[0].status == "improved"
    assert report.suites[0].relative_drop is not None and report.suites[0].relative_drop < 0


def test_a_significant_drop_under_ten_percent_is_not_a_regression() -> None:
    base = {f"r{i:04d}": 1.0 for i in range(1000)}
    cand = {k: 0.0 if i < 60 else 1.0 for i, k in enumerate(base)}        # -6%, certain
    verdict = compare_scores("signal", base, cand, FAST)
    assert verdict.status == "ok"
    assert verdict.drop_low is not None and verdict.drop_low > 0           # significant, but small


def test_a_large_drop_on_few_noisy_rows_is_noise() -> None:
    base = {f"r{i:02d}": float(i % 2) for i in range(40)}                   # 20 of 40 right
    worse, better = ["r01", "r03", "r05", "r07", "r09"], ["r00", "r02"]       # changed both ways, net -3
    cand = base | dict.fromkeys(worse, 0.0) | dict.fromkeys(better, 1.0)
    verdict = compare_scores("traps", base, cand, FAST)
    assert verdict.baseline == 0.5 and verdict.candidate == 17 / 40
    assert verdict.relative_drop is not None and verdict.relative_drop > 0.10
    assert verdict.status == "noise"


def test_mismatched_rows_are_reported_and_only_common_rows_compared() -> None:
    base = draw(difficulty(11), 11)
    keys = list(base)
    cand = {k: base[k] for k in keys[50:]} | {f"new{i}": 0.0 for i in range(25)}
    verdict = compare_scores("signal", base, cand, FAST)
    assert (verdict.common_rows, verdict.only_baseline, verdict.only_candidate) == (ROWS - 50, 50, 25)
    assert verdict.status == "ok" and verdict.baseline == verdict.candidate   # identical where both scored
    assert "50 rows only in the baseline, 25 only in the candidate" in verdict.reason


def test_too_few_common_rows_are_refused() -> None:
    base = {f"a{i}": 1.0 for i in range(100)}
    cand = {f"a{i}": 0.0 for i in range(20)} | {f"b{i}": 0.0 for i in range(80)}
    report = gate(doc({"signal": base}), doc({"signal": cand}), GateConfig(min_rows=30, n_resamples=200))
    assert report.status == "refused" and not report.regression
    assert report.suites[0].status == "refused" and "only 20 rows in common" in report.suites[0].reason


def test_a_missing_suite_refuses_a_new_one_is_reported_and_a_regression_still_wins() -> None:
    base = draw(difficulty(1), 1)
    report = gate(doc({"signal": base, "risk": base}), doc({"signal": base, "validator": base}), FAST)
    statuses = {v.suite: v.status for v in report.suites}
    assert statuses == {"risk": "missing", "signal": "ok", "validator": "new"}
    assert report.status == "refused"
    worse = gate(doc({"signal": base, "risk": base}), doc({"signal": flip_correct(base, 0.4, 2)}), FAST)
    assert worse.status == "regression"


def test_the_report_notes_different_llms_and_dataset_versions() -> None:
    base = draw(difficulty(2), 2)
    report = gate(doc({"s": base}, datasets={"signal": "aaa"}),
                  doc({"s": base}, llm="openai/gpt-4o-mini", datasets={"signal": "bbb"}), FAST)
    assert any("different LLMs" in n for n in report.notes)
    assert any("signal aaa -> bbb" in n for n in report.notes)
    assert report.to_json()["suites"]["s"]["status"] == "ok"


def test_the_report_notes_more_failed_calls_than_the_baseline() -> None:
    base = draw(difficulty(3), 3)
    failing = doc({"s": base})
    failing = failing.model_copy(update={"suites": {"s": failing.suites["s"].model_copy(update={"failures": 7})}})
    assert any("s: 7 failed calls (baseline 0)" in n for n in gate(doc({"s": base}), failing, FAST).notes)
    assert gate(failing, doc({"s": base}), FAST).notes == ()


def test_the_same_runs_give_the_same_verdict_and_figures() -> None:
    base = draw(difficulty(5), 5)
    cand = perturb(base, 0.2, 6)
    assert gate(doc({"s": base}), doc({"s": cand})).to_json() == gate(doc({"s": base}), doc({"s": cand})).to_json()


def test_relative_drop_handles_a_zero_baseline() -> None:
    assert relative_drop(0.5, 0.4) == pytest.approx(0.2)
    assert relative_drop(-0.5, -0.6) == pytest.approx(0.2)
    assert relative_drop(0.0, -0.1) == float("inf") and relative_drop(0.0, 0.1) == 0.0


def test_documents_keep_unknown_keys_and_drop_unusable_scores() -> None:
    d = parse_document({"schema": 1, "llm": {"signal": "offline"}, "datasets": {}, "future": [1, 2],
                        "suites": {"s": {"scores": {"a": 1, "b": None, "c": "x", "d": float("nan")}, "extra": 3}}})
    assert d.suites["s"].scores == {"a": 1.0}
    assert d.to_json()["future"] == [1, 2] and d.to_json()["suites"]["s"]["extra"] == 3
    assert d.llm_label == "signal=offline"
    with pytest.raises(DocumentError, match="suites"):
        parse_document({"schema": 1, "suites": {"s": {"scores": [1, 2]}}})
    with pytest.raises(DocumentError, match="schema 2"):
        parse_document({"schema": 2})
