"""Replays trades.csv from the starting cash and checks it against equity.csv."""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from domain.money import money

NY = ZoneInfo("America/New_York")


def replay_ledger(report: Path, starting_cash: Decimal, closes: Any) -> list[tuple[date, Decimal, Decimal]]:
    """For every equity.csv row: (day, replayed cash, replayed equity) from trades.csv alone.

    Args:
        closes: callable (symbol, day) -> Decimal close used to value positions.
    """
    trades = list(csv.DictReader((report / "trades.csv").open()))
    rows = list(csv.DictReader((report / "equity.csv").open()))
    cash = starting_cash
    qty: dict[str, Decimal] = defaultdict(Decimal)
    out = []
    i = 0
    for row in rows:
        day = date.fromisoformat(row["date"])
        while i < len(trades) and datetime.fromisoformat(trades[i]["time"]).astimezone(NY).date() <= day:
            t = trades[i]
            q, px, fee = Decimal(t["qty"]), Decimal(t["price"]), Decimal(t["fee"])
            if t["side"] == "buy":
                cash -= money(q * px) + fee
                qty[t["symbol"]] += q
            else:
                cash += money(q * px) - fee
                qty[t["symbol"]] -= q
            i += 1
        equity = cash + sum((money(q * closes(s, day)) for s, q in qty.items() if q), Decimal(0))
        out.append((day, cash, equity))
    assert i == len(trades), "trades after the last equity row"
    return out
