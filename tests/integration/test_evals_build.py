"""`quorum evals build`: reproducible bytes, schemas, twins, anonymisation, point in time, committed datasets."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.market_data import DailyBarMarketData, ReplayMarketData
from application.evals.build import BuildParameters, BuiltDatasets, build_datasets, sha256
from domain.evals.barriers import Barriers, triple_barrier
from domain.evals.rows import RiskRow, SignalRow, TrapRow, ValidatorRow
from entrypoints.cli import app
from entrypoints.wiring.venue import NOT_STOCKS

ROOT = Path(__file__).resolve().parents[2]
MARKET = ROOT / "tests" / "fixtures" / "market"
COMMITTED = ROOT / "evals" / "datasets"
CALENDAR = NyseCalendar()
SMALL = BuildParameters(seed=5, n_signal=60, n_risk=30, n_validator=30, evidence_draws=1500)
SCHEMAS: dict[str, Any] = {"signal": SignalRow, "risk": RiskRow, "validator": ValidatorRow, "traps": TrapRow}
TWINNED = ("signal", "risk", "validator")
ISO_DATE = re.compile(r"(?<!\d)(19|20)\d\d-\d\d-\d\d")


def build(market: DailyBarMarketData, params: BuildParameters = SMALL) -> BuiltDatasets:
    return asyncio.run(build_datasets(market, CALENDAR, params=params, exclude=NOT_STOCKS))


@pytest.fixture(scope="module")
def market() -> ReplayMarketData:
    return ReplayMarketData([MARKET / "daily", MARKET / "context"], CALENDAR)


@pytest.fixture(scope="module")
def built(market: ReplayMarketData) -> BuiltDatasets:
    return build(market)


def rows(built: BuiltDatasets, name: str) -> list[Any]:
    schema = SCHEMAS[name.removesuffix("_named")]
    return [schema.model_validate_json(line) for line in built.files[f"{name}.jsonl"].decode().splitlines()]


def stocks(market: ReplayMarketData) -> set[str]:
    return {s for s in market.symbols if s not in NOT_STOCKS}


def test_two_builds_give_the_same_bytes(market: ReplayMarketData, built: BuiltDatasets) -> None:
    assert build(market).files == built.files


def test_the_manifest_names_every_file_with_its_rows_and_content_hash(built: BuiltDatasets) -> None:
    m = json.loads(built.files["manifest.json"])
    assert set(m["datasets"]) == {"signal", "signal_named", "risk", "risk_named", "validator", "validator_named",
                                  "traps"}
    for entry in m["datasets"].values():
        data = built.files[entry["file"]]
        assert entry["sha256"] == sha256(data) and entry["version"] == entry["sha256"][:12]
        assert entry["rows"] == len(data.decode().splitlines())
    assert m["datasets"]["signal"]["rows"] == 60 and m["datasets"]["traps"]["rows"] == 24
    assert m["datasets"]["signal"]["pair"] == "signal_named" and m["datasets"]["traps"]["twin"] is None
    assert m["parameters"]["seed"] == 5 and m["labels"]["time_limit_sessions"] == 20
    assert m["source"]["stocks"] == 14 and len(m["source"]["bars_sha256"]) == 64


def test_twins_share_ids_strata_and_outcomes_and_only_named_rows_say_where_they_come_from(
        built: BuiltDatasets) -> None:
    for name in TWINNED:
        anon, named = rows(built, name), rows(built, f"{name}_named")
        assert [r.id for r in anon] == [r.id for r in named] and len({r.id for r in anon}) == len(anon)
        for a, n in zip(anon, named, strict=True):
            assert (a.twin, n.twin) == ("anonymised", "named")
            assert a.outcome == n.outcome
            assert a.source is None and n.source is not None
    signal = rows(built, "signal")
    assert sum(r.stratum == "trending" for r in signal) == 30


def test_anonymised_rows_name_no_ticker_no_date_and_no_real_price(market: ReplayMarketData,
                                                                  built: BuiltDatasets) -> None:
    tickers = stocks(market)
    for name in (*TWINNED, "traps"):
        text = built.files[f"{name}.jsonl"].decode()
        assert not tickers & set(re.findall(r"\b[A-Z]{1,5}\b", text)), name
        assert not ISO_DATE.search(text), name
    for name in TWINNED:
        for a, n in zip(rows(built, name), rows(built, f"{name}_named"), strict=True):
            real_close = n.source.close
            shown = json.dumps(a.context.model_dump(mode="json"))
            numbers = {float(x) for x in re.findall(r"-?\d+\.\d+", shown)}
            assert abs(real_close - 100) < 0.01 or real_close not in numbers
            assert ISO_DATE.search(n.context.as_of) and n.source.symbol in tickers


def test_anonymised_prices_are_the_named_ones_scaled_to_a_close_of_100(built: BuiltDatasets) -> None:
    for a, n in zip(rows(built, "signal"), rows(built, "signal_named"), strict=True):
        fa, fn = a.context.symbols[0], n.context.symbols[0]
        scale = 100 / n.source.close
        assert fa.price == 100.0 and fn.price == pytest.approx(n.source.close, abs=0.005)
        assert fa.sma_50 == pytest.approx(fn.sma_50 * scale, abs=0.01 * scale + 0.006)
        assert fa.return_20d == fn.return_20d and fa.atr_pct == fn.atr_pct
        assert a.context.as_of == "day 0" and a.context.market.text.startswith("Market on day 0")


def test_outcomes_label_again_from_their_own_forward_bars(built: BuiltDatasets) -> None:
    for name in (*TWINNED, "traps"):
        for r in rows(built, name):
            o = r.outcome
            again = triple_barrier(o.forward.path(), Barriers(o.stop_pct, o.take_profit_pct, o.max_sessions))
            assert (again.label, again.barrier, again.exit_session) == (o.label, o.barrier, o.exit_session)
            assert again.realised_return == pytest.approx(o.realised_return, abs=1e-6)


def test_named_twins_date_the_entry_the_next_session_and_the_exit_within_the_time_limit(
        built: BuiltDatasets) -> None:
    for r in rows(built, "signal_named"):
        day, entry, exit_ = (date.fromisoformat(d) for d in (r.source.day, r.source.entry_day, r.source.exit_day))
        assert entry == CALENDAR.next_session(day)
        assert len(CALENDAR.sessions(entry, exit_)) == r.outcome.exit_session


def test_validator_evidence_closed_before_the_snapshot(built: BuiltDatasets) -> None:
    named = rows(built, "validator_named")
    assert sum(len(r.source.evidence) for r in named) > 0
    for r in named:
        for item in r.source.evidence:
            _, span = item.split(" ")
            _, closed = span.split("..")
            assert date.fromisoformat(closed) < date.fromisoformat(r.source.day)
    for r in rows(built, "validator"):
        c = r.context.candidates[0]
        assert len(c.similar_trades) <= 5
        assert all("sessions before day 0" in e.text and "PAST_" in e.text for e in c.similar_trades)


def _stocks_scaled(market: ReplayMarketData, k: float) -> DailyBarMarketData:
    """Every stock's prices times `k` and volumes divided by it (a power of two: exact in floating point, so
    returns, ratios and dollar volumes do not change by a bit); the market context as it is."""
    out = {}
    for s in market.symbols:
        b = market.series(s)
        assert b is not None
        out[s] = b if s in NOT_STOCKS else replace(b, open=b.open * k, high=b.high * k, low=b.low * k,
                                                   close=b.close * k, volume=b.volume / k)
    return DailyBarMarketData(out, CALENDAR)


@pytest.fixture(scope="module")
def scaled(market: ReplayMarketData) -> BuiltDatasets:
    return build(_stocks_scaled(market, 1024.0))


def test_anonymised_rows_do_not_depend_on_the_price_level(built: BuiltDatasets, scaled: BuiltDatasets) -> None:
    """The same market at 1024 times the prices: every anonymised file is the same bytes, every named one is not."""
    for name in (*TWINNED, "traps"):
        assert scaled.files[f"{name}.jsonl"] == built.files[f"{name}.jsonl"], name
    for name in TWINNED:
        assert scaled.files[f"{name}_named.jsonl"] != built.files[f"{name}_named.jsonl"], name


_PRICE_IN_TEXT = re.compile(r"price (\d+\.\d\d) vs 50-day average (\d+\.\d\d)")


def _real_levels(named: Any) -> set[float]:
    """Every price level a named twin shows: its close, its averages, those of the similar past trades."""
    levels = {named.source.close}
    for f in (*getattr(named.context, "symbols", ()), *getattr(named.context, "candidates", ())):
        levels |= {getattr(f, k) for k in ("price", "sma_20", "sma_50") if hasattr(f, k)}
        for e in getattr(f, "similar_trades", ()):
            levels |= {float(x) for m in _PRICE_IN_TEXT.findall(e.text) for x in m}
    return levels


def test_no_real_price_level_appears_anywhere_in_an_anonymised_row(scaled: BuiltDatasets) -> None:
    """At 1024 times the prices every real level is in the thousands, far from the anonymised scale of 100, so
    scanning the whole JSON text of each anonymised row for the levels of its named twin finds no coincidence."""
    for name in TWINNED:
        lines = scaled.files[f"{name}.jsonl"].decode().splitlines()
        for line, named in zip(lines, rows(scaled, f"{name}_named"), strict=True):
            levels = _real_levels(named)
            assert min(levels) > 1000
            shown = {float(x) for x in re.findall(r"\d+\.\d+|\d+", line)}
            assert not levels & shown, (name, named.id, sorted(levels & shown))
            assert named.source.symbol not in re.findall(r"[A-Z]+", line)
            for day in (named.source.day, named.source.entry_day, named.source.exit_day):
                assert day not in line


def test_the_forward_bars_are_the_real_sessions_after_the_snapshot_scaled_to_its_close(
        market: ReplayMarketData, built: BuiltDatasets) -> None:
    for name in TWINNED:
        for r in rows(built, f"{name}_named"):
            series = market.series(r.source.symbol)
            assert series is not None
            i = series.index_of(date.fromisoformat(r.source.day))
            assert i is not None and float(series.close[i]) == r.source.close
            scale = 100 / r.source.close
            for field in ("open", "high", "low", "close"):
                real = getattr(series, field)[i + 1: i + 21]
                assert getattr(r.outcome.forward, field) == tuple(round(float(x) * scale, 2) for x in real)
            assert date.fromisoformat(r.source.entry_day) == series.days[i + 1]


def _garbled_after(market: ReplayMarketData, cutoff: date) -> DailyBarMarketData:
    out = {}
    for s in market.symbols:
        b = market.series(s)
        assert b is not None
        k = np.array([1.0 if d <= cutoff else 1.7 for d in b.days])
        out[s] = replace(b, open=b.open * k, high=b.high * k, low=b.low * k, close=b.close * k,
                         volume=b.volume / k)
    return DailyBarMarketData(out, CALENDAR)


def _contexts(built: BuiltDatasets, name: str) -> dict[tuple[str, str], str]:
    return {(r.source.symbol, r.source.day): r.context.model_dump_json() for r in rows(built, f"{name}_named")}


@pytest.mark.parametrize("which", [0, 1, 2])
def test_no_bar_after_a_snapshot_changes_what_the_agent_sees(market: ReplayMarketData, built: BuiltDatasets,
                                                             which: int) -> None:
    """Every bar after the session of one scenario is changed: no context up to that session may change (that
    scenario's own included, so even one bar of look-ahead fails)."""
    key = sorted(_contexts(built, "validator"))[which * 9]
    cutoff = date.fromisoformat(key[1])
    garbled = build(_garbled_after(market, cutoff))
    compared = []
    for name in TWINNED:
        before, after = _contexts(built, name), _contexts(garbled, name)
        for k in before.keys() & after.keys():
            if date.fromisoformat(k[1]) <= cutoff:
                assert before[k] == after[k], (name, k)
                compared.append(k)
    assert key in compared and len(compared) >= 10


def _evals_build(*args: str) -> Any:
    return CliRunner().invoke(app, ["evals", "build", *args])


def test_the_cli_refuses_a_missing_path_a_file_and_a_directory_without_bars(tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    missing = _evals_build("--data", str(tmp_path / "nope"), "--out", out)
    assert missing.exit_code == 2 and "is not a directory" in missing.output
    a_file = tmp_path / "AAPL.csv"
    a_file.write_text("date,open,high,low,close,volume\n")
    not_a_dir = _evals_build("--data", str(a_file), "--out", out)
    assert not_a_dir.exit_code == 2 and "is not a directory" in not_a_dir.output
    empty = tmp_path / "empty"
    empty.mkdir()
    no_bars = _evals_build("--data", str(empty), "--out", out)
    assert no_bars.exit_code == 2 and "no .csv or .csv.gz" in no_bars.output
    assert not (tmp_path / "out").exists()


def _bars_in(folder: Path) -> Path:
    """A directory of bars in the shipped format (a copy of one fixture stock): a valid `--data` but for its path."""
    folder.mkdir(parents=True)
    (folder / "AAPL_data.csv").write_bytes((MARKET / "daily" / "AAPL_data.csv").read_bytes())
    return folder


@pytest.mark.parametrize("where", ["sp500_2018_2024", "sp500_2018_2024/daily", "copy_of_sp500_2018_2024_bars"])
def test_the_cli_refuses_data_whose_path_names_the_reserved_set(tmp_path: Path, where: str) -> None:
    data = _bars_in(tmp_path / where)
    refused = _evals_build("--data", str(data), "--out", str(tmp_path / "out"))
    assert refused.exit_code == 2 and "reserved for evaluation" in refused.output
    assert not (tmp_path / "out").exists()


def test_the_cli_refuses_a_link_to_the_reserved_set_or_bars_linked_from_it(tmp_path: Path) -> None:
    reserved = _bars_in(tmp_path / "held_out" / "sp500_2018_2024_v2")
    link = tmp_path / "innocent"
    link.symlink_to(reserved, target_is_directory=True)
    by_link = _evals_build("--data", str(link), "--out", str(tmp_path / "out"))
    assert by_link.exit_code == 2 and "reserved for evaluation" in by_link.output
    mixed = _bars_in(tmp_path / "mixed")
    (mixed / "MSFT_data.csv").symlink_to(reserved / "AAPL_data.csv")
    by_file = _evals_build("--data", str(mixed), "--out", str(tmp_path / "out"))
    assert by_file.exit_code == 2 and "reserved for evaluation" in by_file.output
    assert not (tmp_path / "out").exists()


def test_the_cli_says_when_the_data_cannot_fill_the_datasets(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evals", "build", "--data", str(MARKET / "daily"), "--data",
                                      str(MARKET / "context"), "--out", str(tmp_path)])
    assert result.exit_code == 1 and "scenarios found in the data" in result.output
    assert not list(tmp_path.iterdir())


def test_the_committed_manifest_hashes_are_the_committed_files() -> None:
    manifest = json.loads((COMMITTED / "manifest.json").read_text())
    listed = {entry["file"] for entry in manifest["datasets"].values()}
    assert listed == {p.name for p in COMMITTED.glob("*.jsonl")}
    for entry in manifest["datasets"].values():
        data = (COMMITTED / entry["file"]).read_bytes()
        assert sha256(data) == entry["sha256"] and entry["version"] == entry["sha256"][:12], entry["file"]
        assert data.count(b"\n") == entry["rows"]
    assert manifest["datasets"]["signal"]["rows"] >= 300 and 20 <= manifest["datasets"]["traps"]["rows"] <= 30
    assert manifest["source"]["dirs"] == ["data/daily/sp500_2013_2018", "data/daily/context"]


@pytest.mark.slow
def test_the_committed_datasets_are_what_a_rebuild_from_the_shipped_data_gives(tmp_path: Path) -> None:
    """The full build (about 10 s): `quorum evals build --out tmp` writes the committed files byte for byte."""
    result = CliRunner().invoke(app, ["evals", "build", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    committed = json.loads((COMMITTED / "manifest.json").read_text())
    assert {k: v["sha256"] for k, v in printed["datasets"].items()} == {
        k: v["sha256"] for k, v in committed["datasets"].items()}
    fresh = sorted(p.name for p in tmp_path.iterdir())
    assert fresh == sorted(p.name for p in COMMITTED.iterdir() if p.suffix in (".jsonl", ".json"))
    for name in fresh:
        assert (tmp_path / name).read_bytes() == (COMMITTED / name).read_bytes(), name
