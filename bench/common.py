"""Shared helpers of the benchmarks: timing statistics, machine description, result files."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"

Op = Literal[">=", "<=", ">", "<"]


@dataclass(frozen=True)
class Target:
    """A figure compared with a threshold: `actual op threshold` must hold."""

    metric: str
    op: Op
    threshold: float
    actual: float
    unit: str = ""

    @property
    def met(self) -> bool:
        return {
            ">=": self.actual >= self.threshold,
            "<=": self.actual <= self.threshold,
            ">": self.actual > self.threshold,
            "<": self.actual < self.threshold,
        }[self.op]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.metric} = {self.actual:.4g}{unit} (target {self.op} {self.threshold:g}{unit}): " + (
            "met" if self.met else "MISSED")


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    """p50/p95/p99/mean/min/max of durations given in seconds, in milliseconds."""
    a = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()),
        "min": float(a.min()),
        "max": float(a.max()),
        "n": int(a.size),
    }


class Stopwatch:
    """`with Stopwatch() as sw: ...` then `sw.seconds`."""

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on, including the load at the time (other work skews timings)."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "numpy": np.__version__,
    }
    with contextlib.suppress(OSError):
        info["load_average_1m"] = round(os.getloadavg()[0], 2)
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def write_result(
    name: str,
    *,
    figures: dict[str, Any],
    baselines: dict[str, Any],
    ratios: dict[str, float],
    targets: list[Target],
    details: dict[str, Any] | None = None,
    started: datetime | None = None,
) -> dict[str, Any]:
    """Write bench/results/<name>.json and return what was written.

    Args:
        name: benchmark name (file stem).
        figures: what the benchmark measures (the thing under test).
        baselines: the same measurement of the reference, taken in the same run.
        ratios: figure / baseline comparisons, named.
        targets: thresholds from the issue, with the measured values.
        details: parameters and anything else worth keeping.
        started: when the run began (default: now).
    """
    result = {
        "name": name,
        "timestamp": (started or datetime.now(UTC)).isoformat(timespec="seconds"),
        "passed": all(t.met for t in targets),
        "figures": figures,
        "baselines": baselines,
        "ratios": ratios,
        "targets": [t.as_dict() for t in targets],
        "details": details or {},
        "machine": machine_info(),
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
    print(f"[{name}] wrote {path.relative_to(RESULTS_DIR.parent.parent)}")
    for t in targets:
        print(f"[{name}]   {t.describe()}")
    return result


_SYMBOLS = {
    "TSLA": "EV maker", "RIVN": "EV maker", "NIO": "EV maker", "LCID": "EV maker", "F": "automaker",
    "GM": "automaker", "AAPL": "consumer hardware", "MSFT": "software", "GOOGL": "internet", "META": "social media",
    "AMZN": "e-commerce", "NVDA": "semiconductor", "AMD": "semiconductor", "INTC": "semiconductor",
    "AVGO": "semiconductor", "MU": "memory chip", "CRM": "software", "ORCL": "software", "ADBE": "software",
    "NFLX": "streaming", "DIS": "media", "JPM": "bank", "BAC": "bank", "GS": "investment bank", "MS": "bank",
    "WFC": "bank", "XOM": "oil major", "CVX": "oil major", "OXY": "oil producer", "SLB": "oil services",
    "PFE": "pharma", "MRK": "pharma", "LLY": "pharma", "MRNA": "biotech", "JNJ": "healthcare", "UNH": "insurer",
    "WMT": "retailer", "COST": "retailer", "TGT": "retailer", "HD": "home improvement", "NKE": "apparel",
    "SBUX": "restaurant", "MCD": "restaurant", "BA": "aerospace", "CAT": "industrial", "DE": "industrial",
    "UPS": "logistics", "FDX": "logistics", "COIN": "crypto exchange", "PLTR": "data software",
    "SNOW": "cloud software", "SHOP": "e-commerce software", "UBER": "ride-hailing", "ABNB": "travel",
    "SPY": "S&P 500 ETF", "QQQ": "Nasdaq-100 ETF", "IWM": "small-cap ETF", "XLE": "energy ETF",
}
_SETUPS = [
    "a breakout above the 52-week high on {vol:.1f}x average volume",
    "a pullback to the rising 20-day moving average",
    "post-earnings drift after a {surprise}% earnings beat",
    "a gap-and-go at the open after an analyst upgrade",
    "a mean-reversion bounce from an oversold RSI of {rsi}",
    "a reclaim of VWAP after a failed breakdown",
    "a bull-flag continuation after a {gain}% run",
    "a short squeeze with short interest near {si}% of float",
    "a range breakout after {days} days of tight consolidation",
    "a relative-strength entry while the sector lagged",
    "a breakdown below support on rising volume",
    "a fade of an exhausted gap up of {gain}%",
]
_REGIMES = [
    "in a risk-on tape with the S&P 500 at record highs",
    "while the VIX spiked above {vix}",
    "on a quiet, low-volume summer session",
    "as ten-year yields jumped {bps} basis points",
    "the day after a hawkish Fed statement",
    "during a broad tech sell-off",
    "with breadth weak and small caps lagging",
    "into a CPI release",
    "while oil rallied {gain}% on supply fears",
    "in a choppy, range-bound market",
]
_OUTCOMES = [
    "The move reversed and the position was stopped out for a {loss}% loss after {hold} days.",
    "It hit the profit target for a {gain}% gain in {hold} days.",
    "The trade went nowhere and was closed flat after {hold} days.",
    "The trailing stop locked in a {gain}% profit after {hold} days.",
    "It gapped down on news the next morning, a {loss}% loss.",
    "The position was cut early for a small {small}% loss when volume dried up.",
]


def trade_texts(n: int, *, seed: int = 7) -> list[str]:
    """`n` varied, realistic trade-journal texts (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    symbols = list(_SYMBOLS)
    out = []
    for _ in range(n):
        sym = symbols[rng.integers(len(symbols))]
        values = {
            "vol": rng.uniform(1.5, 6), "surprise": rng.integers(3, 40), "rsi": rng.integers(15, 32),
            "gain": rng.integers(2, 25), "si": rng.integers(15, 45), "days": rng.integers(5, 40),
            "vix": rng.integers(20, 45), "bps": rng.integers(8, 30), "loss": rng.integers(2, 12),
            "hold": rng.integers(1, 20), "small": round(float(rng.uniform(0.3, 1.5)), 1),
        }
        side = "Bought" if rng.random() < 0.8 else "Sold short"
        setup = _SETUPS[rng.integers(len(_SETUPS))].format(**values)
        regime = _REGIMES[rng.integers(len(_REGIMES))].format(**values)
        outcome = _OUTCOMES[rng.integers(len(_OUTCOMES))].format(**values)
        conf = rng.uniform(0.55, 0.9)
        out.append(f"{side} {sym} ({_SYMBOLS[sym]}) on {setup} {regime}. Signal confidence {conf:.2f}. {outcome}")
    return out
