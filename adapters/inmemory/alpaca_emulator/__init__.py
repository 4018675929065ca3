"""An Alpaca-wire emulator: Alpaca's REST API (trading and market data) on 127.0.0.1 over the exchange model.

Adapter tests and `quorum rehearse` run the real Alpaca adapters against it; see `AlpacaEmulator`.
"""

from adapters.inmemory.alpaca_emulator.emulator import AlpacaEmulator, EmulatorClock
from adapters.inmemory.alpaca_emulator.faults import Fault, RecordedRequest

__all__ = ["AlpacaEmulator", "EmulatorClock", "Fault", "RecordedRequest"]
