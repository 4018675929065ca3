"""`build_datasets`: the eval datasets, built from the market data port, byte for byte reproducible.

The build reads every stock's history once (to sample and to label), takes each scenario's snapshot through
the port as of its session close, labels it with the agent's own barriers, and renders each dataset as JSONL
(anonymised twins, named twins, traps) with a manifest of row counts, SHA-256 content hashes, the data source
and the build parameters. Nothing here writes files or reads the clock: the caller writes `files`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import BaseModel

from application.evals.datasets import (
    EQUITIES,
    GROSS_EXPOSURES,
    RowBuilder,
    Twins,
    common_sectors,
    risk_rows,
    signal_rows,
    validator_rows,
)
from application.evals.evidence import EvidencePool
from application.evals.history import History, load_history
from application.evals.sampling import Progress, Scenario, sample
from application.evals.snapshot import FEATURE_LOOKBACK, Snapshots
from application.evals.traps import trap_rows
from application.market_conditions import CONTEXT_SYMBOLS
from domain.evals.reference import TIME_LIMIT_SESSIONS, describe
from domain.ports.clock import MarketCalendar
from domain.ports.market_data import MarketData
from domain.risk.config import RiskSettings

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
RISK_FIELDS = {"max_position_pct", "max_gross_exposure_pct", "max_daily_loss_pct", "default_stop_pct", "min_stop_pct",
               "max_stop_pct", "validator"}
"""The risk settings a build depends on (written into the manifest)."""
DEFAULT_END = date(2018, 2, 7)
"""The last session of the shipped 2013-2018 stock data: no bar after it is ever read."""


@dataclass(frozen=True)
class BuildParameters:
    """What a build depends on besides the data (all written into the manifest).

    Attributes:
        seed: seed of every draw.
        n_signal: signal scenarios (half trending, half not).
        n_risk: risk scenarios (trending candidates).
        n_validator: validator scenarios (trending candidates).
        horizon: time limit of the labels, in sessions.
        end: the last session whose bars may be read.
        evidence_draws: (symbol, session) draws whose trending setups form the pool of past trades the validator's
            similar-trade evidence comes from.
        evidence_k: similar past trades shown per validator candidate.
        risk: the risk settings of the barriers, sizes and limits (the defaults, not the environment's, so that
            the datasets do not depend on a deployment's settings).
    """

    seed: int = 2013
    n_signal: int = 400
    n_risk: int = 300
    n_validator: int = 300
    horizon: int = TIME_LIMIT_SESSIONS
    end: date = DEFAULT_END
    evidence_draws: int = 6000
    evidence_k: int = 5
    risk: RiskSettings = field(default_factory=RiskSettings)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"seed": self.seed, "n_signal": self.n_signal, "n_risk": self.n_risk, "n_validator": self.n_validator,
                "horizon_sessions": self.horizon, "end": self.end.isoformat(), "evidence_draws": self.evidence_draws,
                "evidence_k": self.evidence_k, "feature_lookback": FEATURE_LOOKBACK,
                "risk_equities": list(EQUITIES), "risk_gross_exposures": list(GROSS_EXPOSURES),
                "risk_settings": self.risk.model_dump(mode="json", include=RISK_FIELDS)}


@dataclass(frozen=True)
class DataSource:
    """Where the bars come from, as the caller describes it (paths relative to the repository, licence files).

    Attributes:
        dirs: the data directories as given.
        files: (path, sha256) of the provenance and licence files found beside the data.
    """

    dirs: tuple[str, ...]
    files: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class BuiltDatasets:
    """The build's output.

    Attributes:
        files: file name -> bytes (the JSONL datasets and `manifest.json`).
        manifest: the manifest as a dict.
    """

    files: dict[str, bytes]
    manifest: dict[str, Any]


DESCRIPTIONS = {
    "signal": "point-in-time scenarios for the signal agent, anonymised (ASSET_nnn, day 0, close = 100)",
    "signal_named": "the named twins of signal.jsonl (real ticker, date and prices; same ids and outcomes)",
    "traps": "hand-made traps where the right call is HOLD (gap-down on news, falling knife, illiquid name, "
             "earnings-like gap)",
    "risk": "BUY candidates on accounts of several sizes and exposures for the risk agent, anonymised",
    "risk_named": "the named twins of risk.jsonl",
    "validator": "BUY candidates with similar past trades closed before the snapshot, for the validator, anonymised",
    "validator_named": "the named twins of validator.jsonl",
}


def dumps(row: BaseModel) -> str:
    """One canonical JSON line (sorted keys, no spaces, no NaN)."""
    return json.dumps(row.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def jsonl(rows: Sequence[BaseModel]) -> bytes:
    """Rows as JSONL bytes."""
    return "".join(dumps(r) + "\n" for r in rows).encode()


def sha256(data: bytes) -> str:
    """Hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


def _summary(rows: Sequence[BaseModel]) -> dict[str, Any]:
    labels = Counter(str(getattr(r, "outcome").label) for r in rows)  # noqa: B009
    wins = sum(1 for r in rows if getattr(r, "outcome").win)  # noqa: B009
    return {"labels": dict(sorted(labels.items())), "wins": wins}


def _twin(name: str, names: Collection[str]) -> dict[str, str | None]:
    if name.endswith("_named"):
        return {"twin": "named", "pair": name.removesuffix("_named")}
    if f"{name}_named" in names:
        return {"twin": "anonymised", "pair": f"{name}_named"}
    return {"twin": None, "pair": None}


def _entry(name: str, data: bytes, rows: Sequence[BaseModel], names: Collection[str]) -> dict[str, Any]:
    digest = sha256(data)
    return {"file": f"{name}.jsonl", "rows": len(rows), "sha256": digest, "version": digest[:12],
            "description": DESCRIPTIONS[name], **_twin(name, names), **_summary(rows)}


def _source(history: History, source: DataSource) -> dict[str, Any]:
    days = [d for b in history.bars.values() for d in (b.days[0], b.days[-1])]
    return {"dirs": list(source.dirs), "files": {p: h for p, h in source.files}, "stocks": len(history.bars),
            "first_day": min(days).isoformat(), "last_day": max(days).isoformat(),
            "bars_sha256": history.fingerprint()}


async def _scenarios(history: History, snapshots: Snapshots, params: BuildParameters,
                     progress: Progress | None) -> dict[str, list[Scenario]]:
    half = params.n_signal // 2
    plans = {"signal": {"trending": half, "other": params.n_signal - half},
             "risk": {"trending": params.n_risk}, "validator": {"trending": params.n_validator}}
    return {name: await sample(history, snapshots, dataset=name, seed=params.seed, quotas=quotas,  # type: ignore[arg-type]
                               horizon=params.horizon, progress=progress) for name, quotas in plans.items()}


async def build_datasets(market: MarketData, calendar: MarketCalendar, *, params: BuildParameters | None = None,
                         source: DataSource | None = None, exclude: Collection[str] = CONTEXT_SYMBOLS,
                         progress: Progress | None = None) -> BuiltDatasets:
    """Build every dataset from the market data.

    Args:
        market: the market data port over the shipped bars (stocks and the market context series).
        calendar: the exchange calendar.
        params: the build parameters (defaults: `BuildParameters()`).
        source: the data source description written into the manifest.
        exclude: symbols that are not stocks (ETFs, indices, the market context).
        progress: called as each long step advances.

    Raises:
        DataError: the data cannot provide the scenarios asked for.
    """
    p = params or BuildParameters()
    history = await load_history(market, calendar, end=p.end, exclude=exclude)
    snapshots = Snapshots(market, calendar)
    sampled = await _scenarios(history, snapshots, p, progress)
    everything = [sc for scs in sampled.values() for sc in scs]
    builder = RowBuilder(history, p.risk, p.horizon, common_sectors(everything), p.seed)
    if progress is not None:
        progress("evidence pool", 0, 1)
    pool = EvidencePool(history, seed=p.seed, draws=p.evidence_draws, horizon=p.horizon, risk=p.risk)
    if progress is not None:
        progress("evidence pool", 1, 1)
    twins: dict[str, Twins] = {
        "signal": signal_rows(builder, sampled["signal"]),
        "risk": risk_rows(builder, sampled["risk"]),
        "validator": validator_rows(builder, sampled["validator"], pool, p.evidence_k),
    }
    datasets: dict[str, Sequence[BaseModel]] = {}
    for name, t in twins.items():
        datasets[name] = t.anonymised
        datasets[f"{name}_named"] = t.named
    datasets["traps"] = trap_rows(p.risk, p.horizon)
    files: dict[str, bytes] = {}
    entries: dict[str, Any] = {}
    for name in sorted(datasets):
        data = jsonl(datasets[name])
        files[f"{name}.jsonl"] = data
        entries[name] = _entry(name, data, datasets[name], datasets)
    manifest = {"schema_version": SCHEMA_VERSION, "datasets": entries, "parameters": p.to_dict(),
                "labels": describe(p.risk, p.horizon), "source": _source(history, source or DataSource(())),
                "sectors_shown": sorted(builder.sectors), "evidence_pool_trades": len(pool.trades)}
    files[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    return BuiltDatasets(files, manifest)
