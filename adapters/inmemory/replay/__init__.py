"""Replayed history fed into the exchange model: the one session driver behind the in-memory venue (backtests,
the `sim` provider) and the Alpaca-wire emulator (rehearsals)."""

from adapters.inmemory.replay.dividends import ReplayedDividends
from adapters.inmemory.replay.driver import ReplayDriver
from adapters.inmemory.replay.timeline import Timeline, run_sync

__all__ = ["ReplayDriver", "ReplayedDividends", "Timeline", "run_sync"]
