"""Deterministic sampling of point-in-time scenarios across symbols and sessions.

Draw k of a dataset picks a symbol and a session from hashes of (seed, dataset, k), so the sample is the same on
every machine. A draw is kept when the pair can be a scenario (history before, the whole time limit after), no
scenario of the same symbol in the dataset lies within the time limit of it (no overlapping outcomes), its
snapshot can be taken, and its stratum still needs scenarios. The order of the dataset is the order of the
draws: random, so row order says nothing about dates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from application.cycle.decide import trending
from application.evals.hashing import pick
from application.evals.history import History
from application.evals.snapshot import Snapshot, Snapshots
from domain.errors import DataError
from domain.evals.rows import ForwardBars, Stratum

MAX_DRAWS_PER_SCENARIO = 200
Progress = Callable[[str, int, int], None]
"""progress(step, done, total): a long step's advance."""


@dataclass(frozen=True)
class Scenario:
    """A sampled snapshot with the bars that follow it.

    Attributes:
        number: position in its dataset (0-based).
        stratum: "trending" (passes the cycle's cheap screen, so an agent would be asked about it) or "other".
        snapshot: what was known at the snapshot.
        index: the snapshot's bar index in the history.
        forward: the bars after the snapshot (scaled: snapshot close 100).
    """

    number: int
    stratum: Stratum
    snapshot: Snapshot
    index: int
    forward: ForwardBars


def _too_close(taken: dict[str, list[int]], symbol: str, session: int, horizon: int) -> bool:
    return any(abs(session - s) <= horizon for s in taken.get(symbol, ()))


async def sample(history: History, snapshots: Snapshots, *, dataset: str, seed: int, quotas: Mapping[Stratum, int],
                 horizon: int, progress: Progress | None = None) -> list[Scenario]:
    """Draw scenarios until every stratum has its quota.

    Raises:
        DataError: the data cannot fill the quotas.
    """
    symbols, sessions = history.symbols, history.sessions
    left = dict(quotas)
    total = sum(left.values())
    out: list[Scenario] = []
    taken: dict[str, list[int]] = {}
    for k in range(max(1, total) * MAX_DRAWS_PER_SCENARIO):
        if len(out) >= total:
            break
        symbol = symbols[pick(seed, len(symbols), dataset, k, "symbol")]
        day = sessions[pick(seed, len(sessions), dataset, k, "day")]
        i = history.scenario_index(symbol, day, horizon)
        session = history.session_number(day)
        if i is None or _too_close(taken, symbol, session, horizon):
            continue
        snap = await snapshots.take(symbol, day)
        if snap is None:
            continue
        stratum: Stratum = "trending" if trending(snap.features) else "other"
        if left.get(stratum, 0) <= 0:
            continue
        left[stratum] -= 1
        taken.setdefault(symbol, []).append(session)
        out.append(Scenario(len(out), stratum, snap, i, history.forward(symbol, i, horizon)))
        if progress is not None:
            progress(dataset, len(out), total)
    if len(out) < total:
        raise DataError(f"{dataset}: only {len(out)} of {total} scenarios found in the data "
                        f"(still needed: {', '.join(f'{k} {v}' for k, v in left.items() if v > 0)})")
    return out
