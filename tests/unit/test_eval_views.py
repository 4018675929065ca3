"""Anonymised and named twins: the view rules, then every row of the committed datasets scanned for leaks.

An anonymised row must not name its ticker, date its session or show its price level; its named twin must be
the same scenario with the real names. The committed files are read as they are (no build), so a hand edit or
a stale build that leaks fails here; `tests/integration/test_evals_build.py` checks that a build is
price-level blind (the same anonymised bytes at 1024 times the prices).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from application.evals.views import View, alias, significant
from domain.agents.schemas import MarketConditions, SymbolFeatures

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ROOT / "evals" / "datasets"
STOCKS = ROOT / "data" / "daily" / "sp500_2013_2018"
TWINNED = ("signal", "risk", "validator")
ISO_DATE = re.compile(r"(?<!\d)(19|20)\d\d-\d\d-\d\d(?!\d)")
YEAR = re.compile(r"(?<![\d.])(19|20)\d\d(?![\d.])")
PRICE_FIELDS = ("price", "sma_20", "sma_50")


def _f(price: float = 112.34567, sma_20: float = 110.0, sma_50: float = 105.5) -> SymbolFeatures:
    return SymbolFeatures(symbol="AAPL", price=price, return_1d=0.012345, return_5d=0.0, return_20d=0.05,
                          return_60d=0.1, sma_20=sma_20, sma_50=sma_50, volatility_20d=0.25, atr_pct=0.0156,
                          avg_dollar_volume_20d=5_432_109_876.0, volume_ratio=1.234)


def test_the_anonymised_view_scales_prices_to_100_and_rounds_like_the_named_one() -> None:
    f = _f()
    anon = View.anonymised(7, f.price, ["XLK"]).features(f)
    named = View.named("AAPL", "2015-01-02T21:00:00+00:00", "2015-01-02", ["XLK"]).features(f)
    assert anon.symbol == "ASSET_007" == alias(7) and anon.price == 100.0 and named.price == 112.35
    assert anon.sma_50 == pytest.approx(105.5 / 112.34567 * 100, abs=0.005)
    same = ("return_1d", "return_20d", "volatility_20d", "atr_pct", "avg_dollar_volume_20d", "volume_ratio")
    assert all(getattr(anon, k) == getattr(named, k) for k in same)
    assert anon.avg_dollar_volume_20d == significant(5_432_109_876.0) == 5.4e9


def test_an_anonymised_asset_at_4321_dollars_shows_no_number_near_its_level() -> None:
    f = _f(price=4321.987, sma_20=4210.5, sma_50=3999.25)
    shown = View.anonymised(3, f.price, ()).features(f).model_dump_json()
    numbers = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?", shown)]
    assert max(n for n in numbers if n != 5.4e9) < 200
    assert "4321" not in shown and "4210" not in shown and "3999" not in shown


def test_the_anonymised_view_is_the_same_at_any_price_level() -> None:
    f = _f()
    k = 1024.0  # a power of two: scaling is exact, so any difference would be the level showing through
    up = f.model_copy(update={"price": f.price * k, "sma_20": f.sma_20 * k, "sma_50": f.sma_50 * k})
    assert View.anonymised(1, up.price, ()).features(up) == View.anonymised(1, f.price, ()).features(f)
    assert View.named("AAPL", "", "", ()).features(up) != View.named("AAPL", "", "", ()).features(f)


def test_the_views_date_the_market_text_and_keep_only_the_shared_sectors() -> None:
    c = MarketConditions(vix=17.234, vix_is_proxy=False, spy_return_20d=0.0123456, spy_above_sma_50=True,
                         spy_trend="up", sector_returns_20d={"XLK": 0.02, "XLRE": 0.01}, text="Market on 2016-01-04")
    anon = View.anonymised(1, 50.0, ["XLK"]).conditions(c)
    named = View.named("X", "", "2016-01-04", ["XLK"]).conditions(c)
    assert anon.sector_returns_20d == {"XLK": 0.02} == named.sector_returns_20d
    assert anon.text.startswith("Market on day 0: VIX 17.2") and "2016" not in anon.text
    assert named.text.startswith("Market on 2016-01-04")


# The committed datasets


@cache
def _lines(name: str) -> tuple[str, ...]:
    return tuple((DATASETS / f"{name}.jsonl").read_text().splitlines())


@cache
def _tickers() -> frozenset[str]:
    return frozenset(p.name.removesuffix(".csv.gz") for p in STOCKS.glob("*.csv.gz"))


def _pairs(name: str) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for line, named in zip(_lines(name), _lines(f"{name}_named"), strict=True):
        yield line, json.loads(line), json.loads(named)


def _strings(x: Any) -> Iterator[str]:
    if isinstance(x, dict):
        for v in x.values():
            yield from _strings(v)
    elif isinstance(x, list):
        for v in x:
            yield from _strings(v)
    elif isinstance(x, str):
        yield x


def _assets(context: dict[str, Any]) -> list[dict[str, Any]]:
    return [*context.get("symbols", []), *context.get("candidates", [])]


def test_the_committed_datasets_have_their_twins_and_the_shipped_universe_to_scan_against() -> None:
    assert len(_tickers()) > 400
    for name in TWINNED:
        assert len(_lines(name)) == len(_lines(f"{name}_named")) >= 300
    assert 20 <= len(_lines("traps")) <= 30


@pytest.mark.parametrize("name", [*TWINNED, "traps"])
def test_no_anonymised_row_names_a_ticker(name: str) -> None:
    words = set(re.findall(r"[A-Za-z][A-Za-z0-9.]*", "".join(_lines(name))))
    assert not words & _tickers()
    if name == "traps":
        return
    for line, anon, named in _pairs(name):
        used = [named["source"]["symbol"], *(e.split(" ")[0] for e in named["source"]["evidence"])]
        assert all(re.search(rf"(?<![A-Za-z]){re.escape(s)}(?![A-Za-z])", line) is None for s in used), anon["id"]
        assert all(re.fullmatch(r"ASSET_\d{3}", a["symbol"]) for a in _assets(anon["context"]))


@pytest.mark.parametrize("name", [*TWINNED, "traps"])
def test_no_anonymised_row_carries_a_date(name: str) -> None:
    for line in _lines(name):
        row = json.loads(line)
        assert not ISO_DATE.search(line), row["id"]
        assert not any(YEAR.search(s) for s in _strings(row)), row["id"]
        assert row["context"]["as_of"] == "day 0"
    if name == "traps":
        return
    for line, anon, named in _pairs(name):
        s = named["source"]
        dates = {s["day"], s["entry_day"], s["exit_day"]} | {d for e in s["evidence"] for d in
                                                            e.split(" ")[1].split("..")}
        assert not any(d in line for d in dates), anon["id"]
        assert ISO_DATE.search(named["context"]["as_of"])


@pytest.mark.parametrize("name", TWINNED)
def test_where_the_named_twin_shows_the_real_price_the_anonymised_twin_shows_it_scaled_to_100(name: str) -> None:
    for _, anon, named in _pairs(name):
        close = named["source"]["close"]
        scale = 100 / close
        for a, n in zip(_assets(anon["context"]), _assets(named["context"]), strict=True):
            for field in PRICE_FIELDS:
                if field not in n:
                    continue
                assert a[field] == pytest.approx(n[field] * scale, abs=0.005 * scale + 0.006), (anon["id"], field)
                if abs(close - 100) > 0.005:
                    assert a[field] != close and a[field] != n[field], (anon["id"], field)
            assert a.get("price", 100.0) == 100.0
        for a_text, n_text in zip(_strings(anon["context"]), _strings(named["context"]), strict=True):
            shown = re.findall(r"price (\d+\.\d\d)", a_text)
            assert shown == ["100.00"] * len(re.findall(r"price (\d+\.\d\d)", n_text)), anon["id"]


_NAMES_AND_LEVELS = (
    (re.compile(r"\b(BUY|SELL) [A-Z][A-Za-z0-9._]*:"), r"\1 _:"),
    (re.compile(r"(price|average|at) \d+\.\d\d"), r"\1 _"),
    (re.compile(r"\((\d+ sessions before day 0|on \d{4}-\d\d-\d\d, closed \d{4}-\d\d-\d\d)\)"), "(_)"),
    (re.compile(r'"[^"]*"'), '"_"'),  # a rule warning quotes the closest past trade's text, cut to a length
)


def _without_names_and_levels(text: str, symbol: str) -> str:
    for pattern, repl in _NAMES_AND_LEVELS:
        text = pattern.sub(repl, text)
    return re.sub(rf"(?<![A-Za-z]){re.escape(symbol)}(?![A-Za-z_0-9])", "_", text)


def _leaves(x: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(x, dict):
        for k, v in sorted(x.items()):
            yield from _leaves(v, f"{path}.{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, x


@pytest.mark.parametrize("name", TWINNED)
def test_each_named_twin_is_the_same_scenario_with_the_real_names(name: str) -> None:
    """Leaf by leaf, the twins differ only in the names, the date and the price levels."""
    for _, anon, named in _pairs(name):
        symbol, day = named["source"]["symbol"], named["source"]["day"]
        assert (anon["id"], anon["outcome"]) == (named["id"], named["outcome"])
        assert named["context"]["as_of"].startswith(day)
        a_leaves, n_leaves = dict(_leaves(anon)), dict(_leaves(named))
        assert a_leaves.keys() - {".source"} == n_leaves.keys() - {k for k in n_leaves if k.startswith(".source")}
        for path, a in a_leaves.items():
            n = n_leaves.get(path)
            last = path.rsplit(".", 1)[-1]
            if path in (".twin", ".source", ".context.as_of") or last in PRICE_FIELDS:
                continue
            if last == "symbol":
                assert (bool(re.fullmatch(r"ASSET_\d{3}", a)), n) == (True, symbol), (anon["id"], path)
            elif path.endswith("market.text"):
                assert a == n.replace(f"Market on {day}", "Market on day 0"), (anon["id"], path)
            elif isinstance(a, str):
                assert _without_names_and_levels(a, alias_of(anon)) == _without_names_and_levels(n, symbol), (
                    anon["id"], path)
            else:
                assert a == n, (anon["id"], path)


def alias_of(row: dict[str, Any]) -> str:
    """The alias of the row's asset."""
    return str(_assets(row["context"])[0]["symbol"])
