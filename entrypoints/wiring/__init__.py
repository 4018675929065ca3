"""Builders the composition root (`entrypoints.container`) wires together: storage, the trading venue (Alpaca,
the in-memory venue, the Alpaca-wire emulator) and the system around the trading cycle. Nothing but the
container calls them."""
