"""The real daily bars shipped with Quorum (`data/PROVENANCE.md`), found beside the installed packages, never
through the working directory: `quorum backtest` replays them by default."""

from __future__ import annotations

from pathlib import Path

from domain.errors import DataError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
"""The project's checkout (the packages are installed editable from it)."""
SHIPPED_DATA = (PROJECT_ROOT / "data" / "daily" / "sp500_2013_2018", PROJECT_ROOT / "data" / "daily" / "context")
"""505 S&P 500 stocks, 2013-02-08 .. 2018-02-07, and the market context (SPY, VIX, sector SPDRs, ...)."""


def shipped_data_dirs() -> list[Path]:
    """The shipped bar directories (absolute), checked.

    Raises:
        DataError: a directory is absent or holds no `.csv`/`.csv.gz` file (an image or a copy without `data/`).
    """
    missing = [d for d in SHIPPED_DATA if not d.is_dir() or not (any(d.glob("*.csv.gz")) or any(d.glob("*.csv")))]
    if missing:
        raise DataError(f"the shipped market data is missing ({', '.join(str(d) for d in missing)})")
    return list(SHIPPED_DATA)


def shown(path: Path) -> str:
    """`path` relative to the project when inside it (`data/daily/context`), else as given."""
    resolved = path.resolve()
    return str(resolved.relative_to(PROJECT_ROOT)) if resolved.is_relative_to(PROJECT_ROOT) else str(path)
