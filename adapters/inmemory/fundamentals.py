"""Fundamentals (sector, market cap) in memory and from CSV files.

`CsvFundamentals` reads:
- the generic format `symbol, sector, market_cap, as_of`;
- S&P 500 constituents files (`Symbol`, `GICS Sector`, no market cap), dated by the date in the file name;
- the 2018 financials file (`Symbol`, `Sector`, `Market Cap`), dated by the date in the file name.

A market cap that is missing, blank, not a number or not positive is unknown: `None`, never 0.

`sector_map()` is the GICS sector map shipped with the package (S&P 500 members on 2026-08-08, no market
caps; see `data/README.md` for its source and licence). `MergedFundamentals` lays sources over one another
field by field, and `discovery_fundamentals(file)` is what discovery uses outside the synthetic market:
the user's fundamentals file (market caps) merged over the shipped sector map.
"""

from __future__ import annotations

import bisect
import csv
import math
import re
from collections.abc import Iterable, Sequence
from datetime import date
from importlib import resources
from pathlib import Path

from domain.errors import DataError
from domain.ports.market_data import Fundamentals, FundamentalsRecord

_DATE_IN_NAME = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_SYMBOL = ("symbol", "ticker")
_SECTOR = ("sector", "gics_sector")
_CAP = ("market_cap", "marketcap", "market_capitalization")
_AS_OF = ("as_of", "date", "asof")
SECTOR_MAP_FILE = "sp500_sectors_2026-08-08.csv"
"""The shipped sector map, in this package's `data/` directory."""


class InMemoryFundamentals(Fundamentals):
    """Fundamentals records held in memory; `get` returns the latest record on or before `as_of`.

    Args:
        records: initial records (any order; a later duplicate of (symbol, as_of) replaces the earlier).
    """

    def __init__(self, records: Iterable[FundamentalsRecord] = ()) -> None:
        self._by_symbol: dict[str, dict[date, FundamentalsRecord]] = {}
        self._days: dict[str, list[date]] = {}
        self.add(records)

    def add(self, records: Iterable[FundamentalsRecord]) -> None:
        """Add or replace records."""
        touched = set()
        for r in records:
            if r.market_cap is not None and not (math.isfinite(r.market_cap) and r.market_cap > 0):
                raise ValueError(f"{r.symbol}: market_cap must be positive or None, got {r.market_cap}")
            self._by_symbol.setdefault(r.symbol, {})[r.as_of] = r
            touched.add(r.symbol)
        for s in touched:
            self._days[s] = sorted(self._by_symbol[s])

    @property
    def symbols(self) -> list[str]:
        """Every symbol with at least one record."""
        return sorted(self._by_symbol)

    async def get(self, symbols: Sequence[str], *, as_of: date) -> dict[str, FundamentalsRecord]:
        """Latest record per symbol dated on or before `as_of`; unknown symbols are left out."""
        out: dict[str, FundamentalsRecord] = {}
        for s in symbols:
            days = self._days.get(s)
            if not days:
                continue
            i = bisect.bisect_right(days, as_of)
            if i:
                out[s] = self._by_symbol[s][days[i - 1]]
        return out


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def _pick(columns: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((columns[n] for n in names if n in columns), None)


def _cap(raw: str) -> float | None:
    try:
        value = float(raw.replace(",", "").replace("$", "").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def read_fundamentals_csv(path: Path) -> list[FundamentalsRecord]:
    """Records of one fundamentals CSV (see the module docstring for the accepted formats).

    Raises:
        DataError: a required column is missing, or there is neither an as_of column nor a date in the file name.
    """
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = {_key(c): c for c in reader.fieldnames or []}
        symbol_col, sector_col = _pick(columns, _SYMBOL), _pick(columns, _SECTOR)
        cap_col, as_of_col = _pick(columns, _CAP), _pick(columns, _AS_OF)
        m = _DATE_IN_NAME.search(path.name)
        missing = [n for n, c in (("symbol", symbol_col), ("sector (or GICS Sector)", sector_col)) if c is None]
        if as_of_col is None and m is None:
            missing.append("as_of (or a YYYY-MM-DD date in the file name)")
        if missing:
            raise DataError(f"{path}: not a fundamentals file: missing column(s) {', '.join(missing)}")
        if symbol_col is None or sector_col is None:
            raise DataError(f"{path}: not a fundamentals file: no symbol or sector column")
        file_day = date(int(m[1]), int(m[2]), int(m[3])) if m else None
        out = []
        for line, row in enumerate(reader, start=2):
            symbol = (row.get(symbol_col) or "").strip().upper()
            if not symbol:
                continue
            day = file_day
            if as_of_col is not None and (row.get(as_of_col) or "").strip():
                try:
                    day = date.fromisoformat(row[as_of_col].strip()[:10])
                except ValueError as exc:
                    raise DataError(f"{path}:{line}: bad as_of {row[as_of_col]!r}") from exc
            if day is None:
                raise DataError(f"{path}:{line}: {symbol} has no as_of and the file name has no date")
            sector = (row.get(sector_col) or "").strip() or None
            cap = _cap(row.get(cap_col) or "") if cap_col is not None else None
            out.append(FundamentalsRecord(symbol, sector, cap, day))
    return out


class CsvFundamentals(InMemoryFundamentals):
    """Fundamentals loaded from CSV files and/or every CSV in directories.

    Args:
        paths: files or directories (non-recursive), read in order; a later record for the same
            (symbol, as_of) replaces an earlier one.
    """

    def __init__(self, paths: Path | str | Sequence[Path | str]) -> None:
        items = [paths] if isinstance(paths, str | Path) else list(paths)
        files: list[Path] = []
        for p in map(Path, items):
            if p.is_dir():
                files.extend(sorted(q for q in p.iterdir() if q.suffix.lower() == ".csv"))
            elif p.is_file():
                files.append(p)
            else:
                raise DataError(f"{p}: no such file or directory")
        super().__init__()
        self.files = files
        for f in files:
            self.add(read_fundamentals_csv(f))


class MergedFundamentals(Fundamentals):
    """Several fundamentals sources laid over one another, field by field.

    For each symbol, each field (sector, market cap) comes from the last source whose record (as of the
    date asked) knows it; a source that does not know a field leaves the earlier sources' value. The merged
    record is dated by the newest record it takes a field from (never after the date asked).

    Args:
        layers: the sources, the later over the earlier.
    """

    def __init__(self, *layers: Fundamentals) -> None:
        if not layers:
            raise ValueError("MergedFundamentals needs at least one source")
        self.layers = layers

    async def get(self, symbols: Sequence[str], *, as_of: date) -> dict[str, FundamentalsRecord]:
        """The merged record per symbol known to any layer on or before `as_of`; unknown symbols are left out."""
        out: dict[str, FundamentalsRecord] = {}
        for layer in self.layers:
            for symbol, record in (await layer.get(symbols, as_of=as_of)).items():
                below = out.get(symbol)
                if below is None:
                    out[symbol] = record
                    continue
                sector_from = record if record.sector is not None else below
                cap_from = record if record.market_cap is not None else below
                dated = [r.as_of for r, known in ((sector_from, sector_from.sector), (cap_from, cap_from.market_cap))
                         if known is not None]
                out[symbol] = FundamentalsRecord(symbol, sector_from.sector, cap_from.market_cap,
                                                 max(dated, default=max(record.as_of, below.as_of)))
        return out


def sector_map() -> CsvFundamentals:
    """The GICS sector map shipped with Quorum: S&P 500 members on 2026-08-08, sectors only, no market caps.

    Raises:
        DataError: the file is missing from the installation.
    """
    shipped = resources.files(__package__ or "adapters.inmemory") / "data" / SECTOR_MAP_FILE
    with resources.as_file(shipped) as path:
        return CsvFundamentals(path)


def discovery_fundamentals(fundamentals_file: Path | str | None = None) -> Fundamentals:
    """Discovery's fundamentals outside the synthetic market: `fundamentals_file` merged over `sector_map()`.

    Args:
        fundamentals_file: a CSV in a format `CsvFundamentals` reads (usually `symbol,sector,market_cap,as_of`);
            its market caps and sectors replace the shipped map's where it knows them.

    Raises:
        DataError: the file is missing or not a fundamentals file.
    """
    shipped = sector_map()
    if fundamentals_file is None:
        return shipped
    return MergedFundamentals(shipped, CsvFundamentals(fundamentals_file))
