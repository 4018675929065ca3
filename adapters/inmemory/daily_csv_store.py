"""`DailyCsvStore`: daily bars as `<SYMBOL>_data.csv` files that `--data DIR` reads (`adapters.inmemory.csv_bars`).

Columns `date,open,high,low,close,adj_close,volume,Name`: the shipped stock files' dialect plus an adjusted close,
from which the loader derives cash dividends (`adapters.inmemory.dividends`). Every write goes to a hidden
temporary file in the same directory, is flushed to disk, then renamed over the series (atomic on POSIX): a
reader sees the old series or the new one, never half a file. The spans known to be complete are kept in
`.quorum-fetch.json` beside them (a name the loader ignores), written the same way.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from domain.errors import DataError
from domain.ports.daily_history import DailyRecord

COLUMNS = ("date", "open", "high", "low", "close", "adj_close", "volume", "Name")
MANIFEST = ".quorum-fetch.json"
SUFFIX = "_data.csv"


def _number(value: float) -> str:
    """Shortest text that reads back as the same float (integral volumes without a decimal point)."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` by `text` through a temporary file in the same directory and a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class DailyCsvStore:
    """Daily bars of each symbol in `<directory>/<SYMBOL>_data.csv`.

    Args:
        directory: where the files go (created when missing).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"DailyCsvStore({str(self.directory)!r})"

    def path(self, symbol: str) -> Path:
        """The file of `symbol`."""
        return self.directory / f"{symbol}{SUFFIX}"

    def read(self, symbol: str) -> list[DailyRecord]:
        """The stored sessions of `symbol`, oldest first (empty when there is no file).

        Raises:
            DataError: the file is not one this store wrote, or a row cannot be read.
        """
        path = self.path(symbol)
        if not path.is_file():
            return []
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        if not rows or tuple(rows[0]) != COLUMNS:
            raise DataError(f"{path} was not written by quorum data fetch (columns {rows[0] if rows else 'none'}, "
                            f"expected {','.join(COLUMNS)}); move it away to fetch {symbol} here")
        out = []
        for n, row in enumerate(rows[1:], start=2):
            try:
                day, o, h, lo, c, adj, vol, _ = row
                out.append(DailyRecord(date.fromisoformat(day), float(o), float(h), float(lo), float(c),
                                       float(vol), float(adj) if adj else None))
            except ValueError as exc:
                raise DataError(f"{path} line {n} cannot be read ({exc}); delete the file to fetch it again") from None
        return sorted(out, key=lambda r: r.day)

    def write(self, symbol: str, records: Sequence[DailyRecord]) -> None:
        """Replace the file of `symbol` by `records` (atomically)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in records:
            writer.writerow([r.day.isoformat(), _number(r.open), _number(r.high), _number(r.low), _number(r.close),
                             "" if r.adj_close is None else _number(r.adj_close), _number(r.volume), symbol])
        write_atomic(self.path(symbol), buffer.getvalue())

    def covered(self, symbol: str) -> tuple[date, date] | None:
        """The span recorded as complete for `symbol`, or None."""
        span = self._manifest()["covered"].get(symbol)
        if not span:
            return None
        return date.fromisoformat(span[0]), date.fromisoformat(span[1])

    def set_covered(self, symbol: str, span: tuple[date, date] | None) -> None:
        """Record (or forget, with None) the span complete for `symbol`."""
        manifest = self._manifest()
        if span is None and symbol not in manifest["covered"]:
            return
        if span is None:
            del manifest["covered"][symbol]
        else:
            manifest["covered"][symbol] = [span[0].isoformat(), span[1].isoformat()]
        write_atomic(self.directory / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")

    def _manifest(self) -> dict[str, Any]:
        path = self.directory / MANIFEST
        if not path.is_file():
            return {"format": 1, "covered": {}}
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"{path} cannot be read ({exc}); delete it to check every symbol again") from None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("covered"), dict):
            raise DataError(f"{path} is not a quorum data fetch record; delete it to check every symbol again")
        return manifest
